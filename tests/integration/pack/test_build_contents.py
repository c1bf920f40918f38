"""What the steps put into the image, read back from the ext4 disk with debugfs (no mount):
USER (account, groups, keys, sudoers, cloud-init settings), ENV of each scope, WORKDIR and a
COPY relative to it, the ENTRYPOINT's unit, and the per-VM state the build leaves out."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pack_build_support import (
    CACHE,
    SESSION,
    Recorder,
    context,
    layers_now,
    remove_new_layers,
    settings,
    skip_unless_buildable,
)

from formation.pack.build import BuiltImage, build_image
from formation.pack.spec import Copy, Entrypoint, Env, FormfileSpec, Run, User, Workdir

pytestmark = [pytest.mark.root, pytest.mark.timeout(900)]
ESCAPE = f"/tmp/formation-pack-escape-{SESSION}"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFormationPackTest dev@laptop"


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuiltImage]:
    skip_unless_buildable()
    before = layers_now() if (CACHE / "l").is_dir() else set()
    root = tmp_path_factory.mktemp("contents")
    spec = FormfileSpec(name="svc", steps=(
        Run(2, f"echo {SESSION} > /etc/formation-test-session"),
        User(3, "app", shell="/bin/sh", groups=("web",), ssh_authorized_keys=(KEY,),
             sudo="true", ssh_pwauth=False),
        Env(4, "TOKEN", "a b", scope="user:app"),
        Env(5, "PORT", "8080", scope="service:svc"),
        Env(6, "MODE", "prod"),
        Workdir(7, "/opt/svc"),
        Copy(8, "hello.sh", "bin/"),
        Run(9, "test -x bin/hello.sh && echo \"$MODE\" > mode"),
        # An absolute symlink in the image resolves in the image, never on the builder.
        Run(10, f"mkdir -p {ESCAPE} && ln -s {ESCAPE} escape"),
        Copy(11, "hello.sh", "escape/"),
    ), entrypoint=Entrypoint(12, shell="exec bin/hello.sh --port $PORT"))
    try:
        yield asyncio.run(build_image(spec, context(root / "ctx"), settings(), root / "out",
                                      Recorder()))
    finally:
        remove_new_layers(before)


def read(image: BuiltImage, path: str) -> str:
    out = subprocess.run(["debugfs", "-R", f"cat {path}", str(image.disk)],
                         capture_output=True, text=True, check=True)
    return out.stdout


def mode(image: BuiltImage, path: str) -> str:
    out = subprocess.run(["debugfs", "-R", f"stat {path}", str(image.disk)],
                         capture_output=True, text=True, check=True).stdout
    return out.split("Mode:", 1)[1].split()[0]


def test_user_step_makes_the_account_with_its_keys_and_sudo(image: BuiltImage) -> None:
    assert any(line.startswith("app:") and line.endswith(":/home/app:/bin/sh")
               for line in read(image, "/etc/passwd").splitlines())
    assert any(line.startswith("web:") and line.endswith(":app")
               for line in read(image, "/etc/group").splitlines())
    assert read(image, "/home/app/.ssh/authorized_keys") == KEY + "\n"
    assert mode(image, "/home/app/.ssh/authorized_keys") == "0600"
    assert read(image, "/etc/sudoers.d/90-formation-app") == "app ALL=(ALL) NOPASSWD:ALL\n"
    assert read(image, "/etc/cloud/cloud.cfg.d/91-formation-user-app.cfg").strip() == \
        '{"ssh_pwauth": false}'


def test_env_scopes_workdir_and_copy(image: BuiltImage) -> None:
    assert "export TOKEN='a b'" in read(image, "/home/app/.profile")
    assert 'MODE="prod"' in read(image, "/etc/environment").splitlines()
    assert mode(image, "/opt/svc/bin/hello.sh") == "0755"
    assert read(image, "/opt/svc/mode") == "prod\n"  # RUN ran in the WORKDIR with the ENV


def test_copy_through_a_symlink_stays_in_the_image(image: BuiltImage) -> None:
    assert not Path(ESCAPE).exists()
    assert mode(image, f"{ESCAPE}/hello.sh") == "0755"


def test_entrypoint_unit(image: BuiltImage) -> None:
    unit = read(image, "/etc/systemd/system/formation-entrypoint.service").splitlines()
    assert 'ExecStart=/bin/sh -c "exec bin/hello.sh --port $$PORT"' in unit
    assert "WorkingDirectory=/opt/svc" in unit
    assert {'Environment="MODE=prod"', 'Environment="PORT=8080"'} <= set(unit)
    assert "StandardOutput=journal+console" in unit
    link = subprocess.run(["debugfs", "-R", "stat /etc/systemd/system/multi-user.target.wants/"
                           "formation-entrypoint.service", str(image.disk)],
                          capture_output=True, text=True, check=True).stdout
    assert 'Fast link dest: "/etc/systemd/system/formation-entrypoint.service"' in link


def test_per_vm_state_is_left_out(image: BuiltImage) -> None:
    assert read(image, "/etc/machine-id") == ""
    listing = subprocess.run(["debugfs", "-R", "ls -p /var/lib/apt/lists", str(image.disk)],
                             capture_output=True, text=True, check=True).stdout
    names = {line.split("/")[5] for line in listing.splitlines() if line.count("/") >= 6}
    assert names <= {".", ".."}, names  # `ls -p`: /inode/mode/uid/gid/name/size/


def test_cloud_init_makes_no_default_user(image: BuiltImage) -> None:
    # Debian's cloud.cfg would add a `debian` account beside the Formfile's USER app.
    assert "users: []" in read(image, "/etc/cloud/cloud.cfg.d/92-formation-users.cfg")
    assert "\ndebian:" not in "\n" + read(image, "/etc/passwd")
    assert "\napp:" in "\n" + read(image, "/etc/passwd")
