"""The parser accepts every directive of the grammar and the variants users write: aliases,
any case, quoting, both ENTRYPOINT forms, comments, blank lines, trailing spaces and
continued lines. Each test reads back the shared FormfileSpec the builder will consume."""

from __future__ import annotations

import pytest

from formation.pack.formfile import parse_formfile
from formation.pack.spec import (
    DEFAULT_BASE,
    Copy,
    Entrypoint,
    Env,
    Expose,
    FormfileSpec,
    Gpu,
    Install,
    Run,
    User,
    Workdir,
)


def parse(body: str) -> FormfileSpec:
    return parse_formfile("NAME app\n" + body, None)


def test_minimal_formfile_has_the_documented_defaults() -> None:
    spec = parse_formfile("NAME app\n", None)
    assert spec == FormfileSpec(name="app")
    assert (spec.base, spec.vcpus, spec.memory_mib, spec.disk_gb) == (DEFAULT_BASE, 1, 512, None)
    assert spec.source == "NAME app\n"


def test_a_full_formfile() -> None:
    text = """\
# the web workload
NAME web
DESCRIPTION A small web app
FROM debian:trixie
VCPU 2
MEM 2048
DISK 20
GPU l4:2
USER username:app sudo:true ssh_authorized_keys:"ssh-ed25519 AAAAC3Nz me@laptop"
INSTALL python3 curl
WORKDIR /srv/app
COPY app.py app.py
ENV PORT=8080
RUN python3 -m compileall .
ENTRYPOINT ["python3", "app.py"]
EXPOSE 8080
"""
    spec = parse_formfile(text, None)
    assert spec.name == "web" and spec.description == "A small web app"
    assert (spec.base, spec.vcpus, spec.memory_mib, spec.disk_gb) == ("debian:trixie", 2, 2048,
                                                                     20)
    assert spec.gpus == (Gpu(line=8, model="l4", count=2),)
    assert spec.steps == (
        User(line=9, username="app", sudo="ALL=(ALL) NOPASSWD:ALL",
             ssh_authorized_keys=("ssh-ed25519 AAAAC3Nz me@laptop",)),
        Install(line=10, packages=("python3", "curl")),
        Workdir(line=11, path="/srv/app"),
        Copy(line=12, src="app.py", dst="/srv/app/app.py"),
        Env(line=13, key="PORT", value="8080"),
        Run(line=14, command="python3 -m compileall ."),
    )
    assert spec.entrypoint == Entrypoint(line=15, argv=("python3", "app.py"))
    assert spec.expose == (Expose(line=16, port=8080),)
    assert spec.to_dict()["steps"][0]["kind"] == "user"


@pytest.mark.parametrize("word", ["VCPU", "CPU", "CORES", "vcpu", "Cpu", "cores"])
def test_vcpu_aliases_in_any_case(word: str) -> None:
    assert parse(f"{word} 4\n").vcpus == 4


@pytest.mark.parametrize("word", ["MEM", "MEMORY", "MBS", "mem", "Memory", "mbs"])
def test_memory_aliases(word: str) -> None:
    assert parse(f"{word} 1024\n").memory_mib == 1024


@pytest.mark.parametrize(("value", "mib"), [("512", 512), ("256000", 256_000), ("2G", 2048),
                                            ("2GiB", 2048), ("1536M", 1536), ("4096MiB", 4096)])
def test_memory_values_and_units(value: str, mib: int) -> None:
    assert parse(f"MEM {value}\n").memory_mib == mib


@pytest.mark.parametrize("word", ["DISK", "STORAGE", "disk", "Storage"])
def test_disk_aliases(word: str) -> None:
    assert parse(f"{word} 65535\n").disk_gb == 65535
    assert parse(f"{word} 5G\n").disk_gb == 5


@pytest.mark.parametrize(("value", "base"), [
    ("debian:bookworm", "debian:bookworm"), ("bookworm", "debian:bookworm"),
    ("debian:12", "debian:bookworm"), ("Debian:Trixie", "debian:trixie"),
    ("trixie", "debian:trixie"), ("debian:13", "debian:trixie")])
def test_from_accepts_debian_releases(value: str, base: str) -> None:
    assert parse(f"FROM {value}\n").base == base


def test_description_quoted_or_not() -> None:
    assert parse("DESCRIPTION   my app: it serves # things  \n").description == \
        "my app: it serves # things"
    assert parse("DESCRIPTION \"quoted, with 'inner' quotes\"\n").description == \
        "quoted, with 'inner' quotes"


def test_gpu_with_and_without_count() -> None:
    spec = parse("GPU a100\nGPU l4:8\n")
    assert spec.gpus == (Gpu(line=2, model="a100", count=1), Gpu(line=3, model="l4", count=8))


def test_user_with_every_key() -> None:
    spec = parse('USER username:ops passwd:"$6$salt$hash" sudo:"ALL=(ALL) ALL" shell:/bin/zsh '
                 "lock_passwd:false ssh_pwauth:yes disable_root:True chpasswd_expire:no "
                 "groups:adm,docker "
                 "ssh_authorized_keys:'ssh-ed25519 AAAA1 a@b' "
                 'ssh_authorized_keys:"ecdsa-sha2-nistp256 AAAA2 c@d"\n')
    assert spec.steps == (User(
        line=2, username="ops", passwd="$6$salt$hash", sudo="ALL=(ALL) ALL",
        shell="/bin/zsh", lock_passwd=False, ssh_pwauth=True, disable_root=True,
        chpasswd_expire=False, groups=("adm", "docker"),
        ssh_authorized_keys=("ssh-ed25519 AAAA1 a@b", "ecdsa-sha2-nistp256 AAAA2 c@d")),)


def test_user_key_colon_space_value_reads_like_yaml() -> None:
    spec = parse('USER username: app ssh_authorized_keys: "ssh-ed25519 AAAA k"\n')
    user = spec.steps[0]
    assert isinstance(user, User)
    assert (user.username, user.ssh_authorized_keys) == ("app", ("ssh-ed25519 AAAA k",))


def test_user_sudo_false_means_no_sudo() -> None:
    user = parse("USER username:app sudo:false\n").steps[0]
    assert isinstance(user, User) and user.sudo is None


def test_install_several_lines_and_pins() -> None:
    spec = parse("INSTALL curl  git\ninstall python3=3.11.2-1 libssl3 g++\n")
    assert spec.steps == (Install(line=2, packages=("curl", "git")),
                          Install(line=3, packages=("python3=3.11.2-1", "libssl3", "g++")))


def test_env_forms_and_scopes() -> None:
    spec = parse('ENV A=1 B="two words" C=\n'
                 "ENV --scope=user:app EDITOR=vim\n"
                 "ENV --scope service:web PORT=8080\n"
                 "ENV GREETING hello there world\n"
                 "ENV --scope=system URL=http://x/#frag\n")
    assert spec.steps == (
        Env(line=2, key="A", value="1"), Env(line=2, key="B", value="two words"),
        Env(line=2, key="C", value=""),
        Env(line=3, key="EDITOR", value="vim", scope="user:app"),
        Env(line=4, key="PORT", value="8080", scope="service:web"),
        Env(line=5, key="GREETING", value="hello there world"),
        Env(line=6, key="URL", value="http://x/#frag"))


def test_workdir_and_copy_destinations_resolve() -> None:
    spec = parse("COPY a.txt etc/a.txt\nWORKDIR /srv\nWORKDIR app\nCOPY b .\n"
                 "COPY c d ./conf/\nCOPY 'with space' /opt/x/../y\nWORKDIR ..\n")
    assert spec.steps == (
        Copy(line=2, src="a.txt", dst="/etc/a.txt"),
        Workdir(line=3, path="/srv"), Workdir(line=4, path="/srv/app"),
        Copy(line=5, src="b", dst="/srv/app/"),
        Copy(line=6, src="c", dst="/srv/app/conf/"), Copy(line=6, src="d", dst="/srv/app/conf/"),
        Copy(line=7, src="with space", dst="/opt/y"),
        Workdir(line=8, path="/srv"))


def test_copy_sources_are_normalized_inside_the_context() -> None:
    spec = parse("COPY ./src/../app/ /srv/\nCOPY . /ctx/\n")
    assert [s.src for s in spec.steps if isinstance(s, Copy)] == ["app", "."]


@pytest.mark.parametrize(("line", "argv", "shell"), [
    ('ENTRYPOINT ["python3", "-m", "http.server"]', ("python3", "-m", "http.server"), None),
    ('ENTRYPOINT [ "/bin/app" ]', ("/bin/app",), None),
    ('ENTRYPOINT ["echo", "a \\"quoted\\" word"]', ("echo", 'a "quoted" word'), None),
    ("ENTRYPOINT python3 -m http.server 8080", None, "python3 -m http.server 8080"),
    ("entrypoint exec /app --flag 'a b'", None, "exec /app --flag 'a b'"),
    ("ENTRYPOINT [ -f /etc/app ] && exec /app", None, "[ -f /etc/app ] && exec /app"),
])
def test_entrypoint_exec_and_shell_forms(line: str, argv: tuple[str, ...] | None,
                                         shell: str | None) -> None:
    assert parse(line + "\n").entrypoint == Entrypoint(line=2, argv=argv, shell=shell)


def test_run_exec_form_becomes_the_same_shell_command() -> None:
    spec = parse('RUN ["echo", "two words", "$HOME"]\nRUN echo "a # b" | tr a b\n')
    assert spec.steps == (Run(line=2, command="echo 'two words' '$HOME'"),
                          Run(line=3, command='echo "a # b" | tr a b'))


def test_expose_ports_and_protocols() -> None:
    spec = parse("EXPOSE 80 443/tcp\nexpose 53/UDP 53/tcp 65535\n")
    assert spec.expose == (Expose(2, 80), Expose(2, 443), Expose(3, 53, "udp"),
                           Expose(3, 53, "tcp"), Expose(3, 65535))


def test_comments_blank_lines_trailing_spaces_and_crlf() -> None:
    text = ("\ufeff# leading comment\r\n\r\n   # indented comment\r\n  NAME app   \r\n"
            "\t\r\nVCPU 2\t \r\n# trailing\r\n")
    spec = parse_formfile(text, None)
    assert (spec.name, spec.vcpus) == ("app", 2)


def test_continued_run_keeps_its_first_line_and_the_lines_after() -> None:
    text = ("NAME app\n"
            "RUN apt-get update && \\\n"
            "    # a comment inside the continuation is skipped\n"
            "    apt-get install -y \\\n"
            "      curl\n"
            "VCPU 3\n"
            "INSTALL a1 \\\n  b2\n")
    spec = parse_formfile(text, None)
    assert spec.steps[0] == Run(line=2, command="apt-get update &&     apt-get install -y "
                                "      curl")
    assert spec.vcpus == 3
    assert spec.steps[1] == Install(line=7, packages=("a1", "b2"))


def test_steps_keep_file_order() -> None:
    spec = parse("RUN one\nINSTALL two\nENV T=3\nRUN four\n")
    assert [s.line for s in spec.steps] == [2, 3, 4, 5]
