"""Config loading: every error names the file (or variable), the key, the line and what was
expected; defaults apply without a file; FORMATION_* variables override the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from formation.config import load_settings, paths
from formation.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "node.yaml"
    path.write_text(text)
    return path


def refused(path: Path | None, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ=environ or {})
    message = str(info.value)
    assert "\n" not in message, "one line"
    return message


def test_unknown_nested_key_names_file_line_key(tmp_path: Path) -> None:
    path = write(tmp_path, "name: edge1\napi:\n  socket: /tmp/x.sock\n  lissten: 1.2.3.4:7\n")
    message = refused(path)
    assert str(path) in message
    assert "line 4" in message
    assert "api.lissten" in message
    assert "unknown key" in message


def test_wrong_type_names_line_and_expectation(tmp_path: Path) -> None:
    path = write(tmp_path, "name: edge1\nprobe:\n  boot_test: sometimes\n")
    message = refused(path)
    assert f"{path}: line 3: key 'probe.boot_test'" in message
    assert "bool" in message


def test_bad_host_port_is_explained(tmp_path: Path) -> None:
    path = write(tmp_path, "api:\n  listen: localhost\n")
    message = refused(path)
    assert f"{path}: line 2: key 'api.listen'" in message
    assert "expected HOST:PORT" in message


def test_port_out_of_range_in_list_names_the_item_line(tmp_path: Path) -> None:
    path = write(tmp_path, "bootstrap:\n  - a.example:7170\n  - b.example:99999\n")
    message = refused(path)
    assert "line 3" in message
    assert "bootstrap.1" in message
    assert "HOST:PORT" in message


def test_bad_name_is_explained(tmp_path: Path) -> None:
    message = refused(write(tmp_path, "name: Not_A_Host\n"))
    assert "line 1" in message and "'name'" in message and "expected a hostname" in message


def test_yaml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "name: edge1\napi:\n  listen: [unclosed\n")
    message = refused(path)
    assert str(path) in message
    assert "invalid YAML" in message
    assert "line" in message and "column" in message


def test_non_mapping_file_is_refused(tmp_path: Path) -> None:
    message = refused(write(tmp_path, "- just\n- a list\n"))
    assert "line 1" in message and "expected a mapping" in message and "list" in message


def test_several_errors_report_the_first_and_count_the_rest(tmp_path: Path) -> None:
    message = refused(write(tmp_path, "nmae: x\nheadless: maybe\n"))
    assert "(and 1 more)" in message


def test_explicit_missing_config_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    message = refused(missing)
    assert str(missing) in message and "no such config file" in message


def test_formation_config_variable_pointing_nowhere_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    message = refused(None, {"FORMATION_CONFIG": str(missing)})
    assert str(missing) in message


def test_defaults_when_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(paths, "default_config_file", lambda: tmp_path / "absent.yaml")
    settings = load_settings(None, environ={})
    assert settings.api.listen is None
    assert settings.api.socket_mode == 0o660
    assert settings.api.clock_skew_s == 60.0
    assert settings.probe.boot_test is True
    assert settings.log.level == "info" and settings.log.format == "text"
    assert settings.trusted_keys == [] and settings.bootstrap == []
    assert settings.api.socket == paths.default_socket()
    assert settings.data_dir == paths.default_data_dir()


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, "# nothing yet\n"), environ={})
    assert settings.api.listen is None


def test_env_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path, "name: edge1\napi:\n  listen: 127.0.0.1:7000\n")
    settings = load_settings(path, environ={
        "FORMATION_API__LISTEN": "0.0.0.0:7170",
        "FORMATION_NAME": "edge2",
        "FORMATION_PROBE__BOOT_TEST": "false",
        "FORMATION_API__CLOCK_SKEW_S": "30",
        "FORMATION_TRUSTED_KEYS": f"[{'ab' * 32}]",
    })
    assert settings.api.listen == "0.0.0.0:7170"
    assert settings.name == "edge2"
    assert settings.probe.boot_test is False
    assert settings.api.clock_skew_s == 30.0
    assert settings.trusted_keys == ["ab" * 32]


def test_env_override_error_names_the_variable(tmp_path: Path) -> None:
    path = write(tmp_path, "name: edge1\n")
    message = refused(path, {"FORMATION_API__LISTEN": "nonsense"})
    assert "environment FORMATION_API__LISTEN" in message
    assert "api.listen" in message and "HOST:PORT" in message


def test_env_unknown_key_names_the_variable(tmp_path: Path) -> None:
    message = refused(write(tmp_path, ""), {"FORMATION_API__LISTN": "1.2.3.4:5"})
    assert "environment FORMATION_API__LISTN" in message and "unknown key" in message


def test_env_conflicting_variables_are_refused(tmp_path: Path) -> None:
    message = refused(write(tmp_path, ""), {"FORMATION_API": "x", "FORMATION_API__LISTEN": "a:1"})
    assert "FORMATION_API" in message


def test_cli_variables_are_not_settings(tmp_path: Path) -> None:
    """FORMATION_DEBUG (tracebacks on request) and FORMATION_CONFIG steer the CLI, not the node."""
    settings = load_settings(write(tmp_path, "name: edge1\n"),
                             environ={"FORMATION_DEBUG": "1", "FORMATION_CONFIG": "ignored"})
    assert settings.name == "edge1"


@pytest.mark.parametrize("written", ["0o640", "0640", "'640'", "416"])
def test_socket_mode_in_octal_as_the_readme_writes_it(tmp_path: Path, written: str) -> None:
    settings = load_settings(write(tmp_path, f"api:\n  socket_mode: {written}\n"), environ={})
    assert settings.api.socket_mode == 0o640


def test_socket_mode_env_override_in_octal(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, ""), environ={"FORMATION_API__SOCKET_MODE": "0o600"})
    assert settings.api.socket_mode == 0o600


def test_bad_socket_mode_is_explained(tmp_path: Path) -> None:
    message = refused(write(tmp_path, "api:\n  socket_mode: rw-rw----\n"))
    assert "line 2" in message and "api.socket_mode" in message and "octal" in message
    message = refused(write(tmp_path, "api:\n  socket_mode: 0o7777\n"))
    assert "api.socket_mode" in message


def test_readme_example_config_is_valid(tmp_path: Path) -> None:
    """The configuration block in README.md, as a user would copy it."""
    readme = (Path(__file__).parents[3] / "README.md").read_text()
    block = readme.split("```yaml\n", 1)[1].split("```", 1)[0]
    settings = load_settings(write(tmp_path, block), environ={})
    assert settings.api.socket_mode == 0o660
    assert settings.name == "edge1"
