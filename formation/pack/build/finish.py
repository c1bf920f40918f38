"""The last layer ("system setup") and the disk image.

The ENTRYPOINT becomes formation-entrypoint.service: started at boot after the network is
configured (network.target, not network-online: a VM without a NIC would wait for nothing;
see unit_text for why not after sysinit.target either), in the last WORKDIR, with the ENV of
scope system and of scope service:NAME where NAME is the Formfile's NAME, `entrypoint` or
`formation-entrypoint`; its output goes to the journal and to the console (ttyS0, what
`vm console` and the serial log show). It runs as root; restarted if it fails, not when it
exits cleanly (a one-shot job stays done).

cloud-init creates no default user (Debian's cloud.cfg would add a `debian` account to every
image, next to the Formfile's USER): an image has the accounts its Formfile makes, and an
instance's user-data may still ask for more.

The layer also drops what must differ per VM or is only build-time state: the package lists
(`apt-get update` in the VM fetches fresh ones), /etc/machine-id (systemd makes one per VM at
first boot), SSH host keys (cloud-init generates them per VM)."""

from __future__ import annotations

from formation.pack.build.steps import Action, State, chroot, systemd_quote
from formation.pack.spec import FormfileSpec

UNIT = "formation-entrypoint.service"
CMDLINE = "root=/dev/vda rw console=ttyS0"

SETUP_SH = r"""
set -eu
unit="$1" text="$2"
if [ -n "$text" ]; then
  printf '%s' "$text" > "/etc/systemd/system/$unit"
  mkdir -p /etc/systemd/system/multi-user.target.wants
  ln -sf "/etc/systemd/system/$unit" "/etc/systemd/system/multi-user.target.wants/$unit"
else
  rm -f "/etc/systemd/system/$unit" "/etc/systemd/system/multi-user.target.wants/$unit"
fi
mkdir -p /etc/cloud/cloud.cfg.d
printf '%s\n' '# formation: no default user (USER makes the accounts)' \
  'users: []' > /etc/cloud/cloud.cfg.d/92-formation-users.cfg
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /etc/ssh/ssh_host_*
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id
"""


def unit_text(spec: FormfileSpec, state: State) -> str:
    entry = spec.entrypoint
    if entry is None:
        return ""
    if entry.argv is not None:
        exec_start = " ".join(systemd_quote(a) for a in entry.argv)
    else:
        exec_start = f"/bin/sh -c {systemd_quote(entry.shell or '')}"
    env = dict(state.env)
    for name in (spec.name, "entrypoint", "formation-entrypoint"):
        env.update(state.service_env.get(name, {}))
    lines = [
        "[Unit]", f"Description=ENTRYPOINT of the Formfile {spec.name}",
        # Not after sysinit.target: cloud-init.service orders itself before it and after
        # systemd-networkd-wait-online, which would hold the workload back for the rest of
        # cloud-init's first boot (a minute or more under TCG). The network is configured
        # once cloud-init-local wrote the seed's config and networkd runs (network.target).
        "DefaultDependencies=no",
        "Wants=network.target",
        "After=local-fs.target systemd-tmpfiles-setup.service systemd-journald.socket "
        "systemd-sysctl.service cloud-init-local.service network.target",
        "Before=shutdown.target", "Conflicts=shutdown.target", "",
        "[Service]", "Type=exec", f"ExecStart={exec_start}",
        f"WorkingDirectory={state.workdir}",
        *(f"Environment={systemd_quote(f'{k}={v}').replace('$$', '$')}"
          for k, v in env.items()),
        "StandardOutput=journal+console", "StandardError=journal+console",
        "Restart=on-failure", "RestartSec=2", "",
        "[Install]", "WantedBy=multi-user.target", "",
    ]
    return "\n".join(lines)


def setup_action(spec: FormfileSpec, state: State) -> Action:
    text = unit_text(spec, state)
    body = chroot(State(), ["/bin/sh", "-c", SETUP_SH, "sh", UNIT, text])
    return Action("system setup", None, {"setup": SETUP_SH, "unit": text}, body, weight=1)
