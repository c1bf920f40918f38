"""The enrollment screen's fields about this node: hostname, underlay interface (a choice from
the host's interfaces, DHCP or a static address), resources offered (beside the host's totals)
and admin SSH keys. Filled from the node's saved settings; read back as `NodeFields`."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label, Select, Static, TextArea

from formation.api.console_models import EditableSettings
from formation.api.host_models import HostInterfaces
from formation.api.models import Resources
from formation.tui.enroll_plan import NodeFields, host_totals

NODE_TITLE = "[b]This node[/b] (h)"
MODES = [("DHCP", "dhcp"), ("static address", "static")]
DEFAULT_PROMPT = "image default: DHCP on every wired interface"
# the field each error names (enroll_plan's wording) -> the widget to mark
ERROR_FIELDS = (("hostname", "#hostname"), ("underlay interface", "#underlay-interface"),
                ("underlay address", "#underlay-address"),
                ("underlay gateway", "#underlay-gateway"), ("underlay dns", "#underlay-dns"),
                ("resources CPUs", "#res-cpus"), ("resources memory", "#res-memory"),
                ("resources disk", "#res-disk"), ("admin SSH keys", "#admin-keys"))


def interface_options(found: HostInterfaces, saved: str | None) -> list[tuple[str, str]]:
    """Interfaces that may be the underlay (not loopback, not the node's own mesh link)."""
    options = []
    for link in found.interfaces:
        if link.role != "candidate":
            continue
        addresses = " ".join(link.addresses) or "no IPv4"
        state = "up" if link.up and link.state in ("up", "unknown") else link.state
        options.append((f"{link.name} · {state} · {link.mac or '-'} · {addresses}", link.name))
    if saved and saved not in [value for _, value in options]:
        options.append((f"{saved} · not on this host now", saved))
    return options


def totals_text(host: Resources | None) -> str:
    if host is None:
        return "this host: …"
    t = host_totals(host)
    return f"of {t['cpus']} CPUs, {t['memory_mb']} MiB, {t['disk_gb']} GB; empty: all"


class NodeFieldsForm(Vertical):
    """Shared by enrollment (saved before founding or joining) and the settings screen."""

    def __init__(self, title: str = NODE_TITLE + " · saved first, then the network is founded "
                 "or joined", **kwargs) -> None:
        super().__init__(**kwargs)
        self.title_text = title
        self.options: list[tuple[str, str]] = []

    def compose(self) -> ComposeResult:
        yield Static(self.title_text, id="node-title")
        with Horizontal(classes="enroll-row"):
            yield Label("hostname", classes="enroll-label")
            yield Input(compact=True, id="hostname", placeholder="lowercase letters, digits and -")
        with Horizontal(classes="enroll-row"):
            yield Label("underlay", classes="enroll-label")
            yield Select([], id="underlay-interface", prompt=DEFAULT_PROMPT, compact=True)
            yield Select(MODES, id="underlay-mode", value="dhcp", allow_blank=False,
                         compact=True)
        with Horizontal(classes="enroll-row"):
            yield Label("static", classes="enroll-label")
            yield Input(compact=True, id="underlay-address", placeholder="address/prefix",
                        disabled=True)
            yield Input(compact=True, id="underlay-gateway", placeholder="gateway",
                        disabled=True)
            yield Input(compact=True, id="underlay-dns", placeholder="DNS servers")
        with Horizontal(classes="enroll-row"):
            yield Label("offer", classes="enroll-label")
            yield Input(compact=True, id="res-cpus", placeholder="CPUs", restrict=r"[0-9]*")
            yield Input(compact=True, id="res-memory", placeholder="MiB", restrict=r"[0-9]*")
            yield Input(compact=True, id="res-disk", placeholder="GB", restrict=r"[0-9]*")
            yield Static(totals_text(None), id="host-totals")
        yield Label("admin SSH public keys, one per line (ssh-ed25519 AAAA… name)")
        yield TextArea(id="admin-keys", soft_wrap=True, compact=True)

    def fill(self, saved: EditableSettings) -> None:
        self.query_one("#hostname", Input).value = saved.name
        u = saved.underlay
        self.offer_interface(u.interface)
        self.query_one("#underlay-mode", Select).value = u.mode
        self.query_one("#underlay-address", Input).value = u.address or ""
        self.query_one("#underlay-gateway", Input).value = u.gateway or ""
        self.query_one("#underlay-dns", Input).value = ", ".join(u.dns)
        r = saved.resources
        for key, widget in (("cpus", "#res-cpus"), ("memory_mb", "#res-memory"),
                            ("disk_gb", "#res-disk")):
            value = getattr(r, key)
            self.query_one(widget, Input).value = "" if value is None else str(value)
        self.query_one("#admin-keys", TextArea).text = "\n".join(saved.admin_ssh_keys)

    def offer_interface(self, chosen: str | None) -> None:
        select = self.query_one("#underlay-interface", Select)
        if chosen is not None and chosen not in [v for _, v in self.options]:
            self.options = [*self.options, (f"{chosen} · not on this host now", chosen)]
            select.set_options(self.options)
        select.value = chosen if chosen is not None else Select.NULL

    def show_interfaces(self, found: HostInterfaces) -> None:
        select: Select[str] = self.query_one("#underlay-interface", Select)
        chosen = select.value if isinstance(select.value, str) else None
        self.options = interface_options(found, chosen)
        select.set_options(self.options)
        select.value = chosen if chosen is not None else Select.NULL

    def show_totals(self, host: Resources | None) -> None:
        self.query_one("#host-totals", Static).update(totals_text(host))

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "underlay-mode":
            static = event.value == "static"
            for widget in ("#underlay-address", "#underlay-gateway"):
                self.query_one(widget, Input).disabled = not static

    def values(self) -> NodeFields:
        text = {w.id: w.value for w in self.query(Input)}
        interface = self.query_one("#underlay-interface", Select).value
        return NodeFields(
            hostname=text["hostname"], interface=None if interface is Select.NULL
            else str(interface), mode=str(self.query_one("#underlay-mode", Select).value),
            address=text["underlay-address"], gateway=text["underlay-gateway"],
            dns=text["underlay-dns"], cpus=text["res-cpus"], memory_mb=text["res-memory"],
            disk_gb=text["res-disk"], keys=self.query_one("#admin-keys", TextArea).text)

    def mark(self, errors: list[str]) -> None:
        """Each field an error names gets the -invalid class; the others lose it."""
        for name, selector in ERROR_FIELDS:
            self.query_one(selector).set_class(
                any(e.startswith(name) for e in errors), "-invalid")
