"""Settings from the environment and a TOML file: precedence, names, types, refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from vestespy._settings import parse_with_settings
from vestespy._sockets import parse_bind
from vestespy.cli import _parse_config as parse_config
from vestespy.cli import build_parser


def _binds(texts: list[str]) -> list[object]:
    return [parse_bind(text) for text in texts]


def _parse(argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> object:
    return parse_with_settings(build_parser(), argv, env or {}, cwd)


def _error(capsys: pytest.CaptureFixture[str], *args: object) -> str:
    with pytest.raises(SystemExit) as exit_info:
        _parse(*args)  # type: ignore[arg-type]
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err  # one line, no traceback
    return err


def test_defaults_without_settings(tmp_path: Path) -> None:
    args = _parse([], {}, tmp_path)
    assert args.workers == 1  # type: ignore[attr-defined]
    assert args.bind == []  # type: ignore[attr-defined]
    assert not hasattr(args, "max_body_size")


def test_precedence_command_line_over_environment_over_file_over_default(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.vestespy]\nworkers = 2\nthreads = 7\nbacklog = 11\n'
    )
    env = {"VESTESPY_WORKERS": "3", "VESTESPY_THREADS": "8"}
    args = _parse(["--workers", "4"], env, tmp_path)
    assert args.workers == 4  # type: ignore[attr-defined]  # command line
    assert args.threads == 8  # type: ignore[attr-defined]  # environment over file
    assert args.backlog == 11  # type: ignore[attr-defined]  # file
    assert args.graceful_timeout == 30.0  # type: ignore[attr-defined]  # default
    args = _parse([], {}, tmp_path)
    assert (args.workers, args.threads) == (2, 7)  # type: ignore[attr-defined]


def test_web_concurrency_sets_workers_below_vestespy_workers(tmp_path: Path) -> None:
    assert _parse([], {"WEB_CONCURRENCY": "5"}, tmp_path).workers == 5  # type: ignore[attr-defined]
    env = {"WEB_CONCURRENCY": "5", "VESTESPY_WORKERS": "6"}
    assert _parse([], env, tmp_path).workers == 6  # type: ignore[attr-defined]
    assert _parse(["-w", "2"], env, tmp_path).workers == 2  # type: ignore[attr-defined]


def test_repeated_flags_are_replaced_by_a_higher_source(tmp_path: Path) -> None:
    config = tmp_path / "server.toml"
    config.write_text('bind = ["127.0.0.1:8001", "unix:/tmp/x.sock"]\nheader = ["X-A: 1, 2"]\n')
    args = _parse(["--config", str(config)], {}, tmp_path)
    assert args.bind == _binds(["127.0.0.1:8001", "unix:/tmp/x.sock"])  # type: ignore[attr-defined]
    assert args.response_headers == ["X-A: 1, 2"]  # type: ignore[attr-defined]
    env = {"VESTESPY_BIND": "127.0.0.1:8002 127.0.0.1:8003", "VESTESPY_HEADER": "X-B: 1\nX-C: 2"}
    args = _parse([f"--config={config}"], env, tmp_path)
    assert args.bind == _binds(["127.0.0.1:8002", "127.0.0.1:8003"])  # type: ignore[attr-defined]
    assert args.response_headers == ["X-B: 1", "X-C: 2"]  # type: ignore[attr-defined]
    args = _parse(["--config", str(config), "-b", "127.0.0.1:8004"], env, tmp_path)
    assert args.bind == _binds(["127.0.0.1:8004"])  # type: ignore[attr-defined]


def test_values_are_read_as_the_flags_read_them(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        'app = "hello:app"\nmax_body_size = 1000\naccess_log = false\ndebug = true\n'
        'keep_alive_timeout = 5\ntrusted_proxies = "10.0.0.0/8,127.0.0.1"\n'
        'server_header = false\nssl_cert_reqs = "optional"\n'
    )
    config_obj = parse_config(["--config", str(config)])
    assert config_obj.app == "hello:app"
    assert config_obj.access_log is False
    assert config_obj.debug is True
    assert config_obj.options["max_body_size"] == 1000
    assert config_obj.options["keep_alive_timeout"] == 5.0
    assert config_obj.options["trusted_proxies"] == ("10.0.0.0/8", "127.0.0.1")
    assert config_obj.options["server_header"] is False
    assert config_obj.options["ssl_cert_reqs"] == "optional"


def test_boolean_environment_variables(tmp_path: Path) -> None:
    env = {"VESTESPY_ACCESS_LOG": "off", "VESTESPY_DEBUG": "yes", "VESTESPY_NO_DATE_HEADER": "1"}
    args = _parse([], env, tmp_path)
    assert args.access_log is False  # type: ignore[attr-defined]
    assert args.debug is True  # type: ignore[attr-defined]
    assert args.date_header is False  # type: ignore[attr-defined]
    # The command line still decides.
    assert _parse(["--access-log"], env, tmp_path).access_log is True  # type: ignore[attr-defined]


def test_pyproject_without_our_table_is_not_read(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("this is not TOML at all [[[")
    assert _parse([], {}, tmp_path).workers == 1  # type: ignore[attr-defined]


def test_config_file_from_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[tool.vestespy]\nthreads = 3\n")
    assert _parse([], {"VESTESPY_CONFIG": str(config)}, tmp_path).threads == 3  # type: ignore[attr-defined]


def test_unknown_environment_variables_are_ignored(tmp_path: Path) -> None:
    # The prefix is shared with build and test settings.
    assert _parse([], {"VESTESPY_COMPILE": "0", "VESTESPY_H11": "h11"}, tmp_path).workers == 1  # type: ignore[attr-defined]


def test_unknown_file_key_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.vestespy]\nworkerz = 2\n")
    err = _error(capsys, [], {}, tmp_path)
    assert "unknown setting 'workerz'" in err


@pytest.mark.parametrize(
    ("content", "env", "expected"),
    [
        ("workers = 'many'", {}, "workers='many': invalid value"),
        ("workers = [1, 2]", {}, "expected one value"),
        ("backend = 'nope'", {}, "choose from"),
        ("bind = 'nowhere:port'", {}, "bind"),
        ("x = [", {}, "invalid TOML"),
        ("", {"VESTESPY_WORKERS": "two"}, "VESTESPY_WORKERS='two'"),
        ("", {"VESTESPY_DEBUG": "maybe"}, "write true or false"),
        ("", {"WEB_CONCURRENCY": "x"}, "WEB_CONCURRENCY"),
    ],
)
def test_bad_values_are_one_line_errors(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str,
    env: dict[str, str],
    expected: str,
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(content + "\n")
    err = _error(capsys, ["--config", str(config)], env, tmp_path)
    assert expected in err


def test_missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _error(capsys, ["--config", str(tmp_path / "missing.toml")], {}, tmp_path)
    assert "cannot read" in err
    assert "missing.toml" in err


def test_log_config_from_toml_and_json(tmp_path: Path) -> None:
    from vestespy._settings import load_log_config

    toml = tmp_path / "log.toml"
    toml.write_text('version = 1\n[root]\nlevel = "WARNING"\n')
    assert load_log_config(str(toml)) == {
        "version": 1,
        "root": {"level": "WARNING"},
        "disable_existing_loggers": False,
    }
    json_file = tmp_path / "log.json"
    json_file.write_text('{"version": 1, "disable_existing_loggers": true}')
    assert load_log_config(str(json_file))["disable_existing_loggers"] is True


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("log.json", "{not json", "invalid JSON"),
        ("log.toml", "level = 'x'", "needs version = 1"),
        ("log.toml", "[[[", "invalid TOML"),
    ],
)
def test_bad_log_config_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: str, expected: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(SystemExit) as exit_info:
        parse_config(["--log-config", str(path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert expected in err


def test_abbreviated_config_flag_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.toml"
    config.write_text("threads = 3\n")
    err = _error(capsys, ["--conf", str(config)], {}, tmp_path)
    assert "write --config in full" in err
