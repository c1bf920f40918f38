"""NAME, DESCRIPTION, FROM and the resources an instance of the workload gets: each may appear
once; VCPU, MEM and DISK have aliases (CPU/CORES, MEMORY/MBS, STORAGE) because users write them."""

from __future__ import annotations

from collections.abc import Callable

from formation.pack.formfile import values
from formation.pack.formfile.state import Directive, State
from formation.pack.formfile.tokens import QuoteError, split_words
from formation.pack.formfile.values import shown
from formation.pack.spec import DISK_GB, GPU_COUNT, MEMORY_MIB, VCPUS, Gpu

VCPU_EXPECTED = f"a whole number of vCPUs from {VCPUS[0]} to {VCPUS[1]}"
MEM_EXPECTED = (f"memory in MiB from {MEMORY_MIB[0]} to {MEMORY_MIB[1]} "
                "(a number, or with a unit: 2048M, 2G)")
DISK_EXPECTED = f"a disk size in GB from {DISK_GB[0]} to {DISK_GB[1]}"
GPU_EXPECTED = (f"a GPU model, optionally with a count from {GPU_COUNT[0]} to {GPU_COUNT[1]} "
                "(MODEL or MODEL:COUNT)")


def name(state: State, d: Directive) -> None:
    if not state.once(d):
        return
    word = state.one_word(d, values.NAME_EXPECTED)
    if word is None:
        return
    if not values.NAME.fullmatch(word.value):
        state.fail(d, word.offset, f"expected {values.NAME_EXPECTED}, got {shown(word.value)}")
        return
    state.meta["name"] = word.value


def description(state: State, d: Directive) -> None:
    """The rest of the line; quotes around the whole of it are removed."""
    if not state.once(d):
        return
    text = d.rest.strip()
    if text[:1] in ("'", '"'):
        try:
            words = split_words(d.logical.text, d.args)
        except QuoteError as exc:
            state.fail(d, exc.offset, str(exc))
            return
        if len(words) > 1:
            state.fail(d, words[1].offset, "expected one quoted text, got more after the "
                       "closing quote")
            return
        text = words[0].value.strip()
    if not text:
        state.fail(d, d.end, "expected a description of the workload, got nothing")
        return
    state.meta["description"] = text


def base(state: State, d: Directive) -> None:
    if not state.once(d):
        return
    word = state.one_word(d, values.BASE_EXPECTED)
    if word is None:
        return
    found = values.base(word.value)
    if found is None:
        state.fail(d, word.offset, f"expected {values.BASE_EXPECTED}, got {shown(word.value)}")
        return
    state.meta["base"] = found


def _one_figure(state: State, d: Directive, expected: str, key: str,
                parse: Callable[[str], int | None]) -> None:
    """VCPU, MEM and DISK: one word, once, parsed and range-checked by `parse`."""
    if not state.once(d):
        return
    word = state.one_word(d, expected)
    if word is None:
        return
    value = parse(word.value)
    if value is None:
        state.fail(d, word.offset, f"expected {expected}, got {shown(word.value)}")
        return
    state.meta[key] = value


def _within(value: int | None, bounds: tuple[int, int]) -> int | None:
    return value if value is not None and bounds[0] <= value <= bounds[1] else None


def vcpus(state: State, d: Directive) -> None:
    _one_figure(state, d, VCPU_EXPECTED, "vcpus", lambda text: values.whole(text, *VCPUS))


def memory(state: State, d: Directive) -> None:
    _one_figure(state, d, MEM_EXPECTED, "memory_mib",
                lambda text: _within(values.memory_mib(text), MEMORY_MIB))


def disk(state: State, d: Directive) -> None:
    _one_figure(state, d, DISK_EXPECTED, "disk_gb",
                lambda text: _within(values.disk_gb(text), DISK_GB))


def gpu(state: State, d: Directive) -> None:
    """GPU may appear once per model: `GPU a100:2` and `GPU l4` ask for both kinds."""
    word = state.one_word(d, GPU_EXPECTED)
    if word is None:
        return
    model, colon, count_text = word.value.partition(":")
    if not values.GPU_MODEL.fullmatch(model):
        state.fail(d, word.offset, f"expected {GPU_EXPECTED}, got model {shown(model)}")
        return
    count = values.whole(count_text, *GPU_COUNT) if colon else 1
    if count is None:
        state.fail(d, word.offset + len(model) + 1,
                   f"expected a GPU count from {GPU_COUNT[0]} to {GPU_COUNT[1]}, "
                   f"got {shown(count_text)}")
        return
    for earlier in state.gpus:
        if earlier.model == model:
            state.fail(d, word.offset, f"{model} already asked for on line {earlier.line}: "
                       "expected one GPU line per model (MODEL:COUNT for several)")
            return
    state.gpus.append(Gpu(line=d.line, model=model, count=count))
