"""The command's argument parsing: flags derived from ServerOptions, bind shortcuts."""

from __future__ import annotations

import dataclasses

import pytest

from vestespy import ServerOptions
from vestespy._sockets import BindSpec
from vestespy.cli import _parse_config as parse_config
from vestespy.cli import build_parser


def test_every_server_option_has_a_flag_with_its_help() -> None:
    help_text = build_parser().format_help()
    for field in dataclasses.fields(ServerOptions):
        assert "--" + field.name.replace("_", "-") in help_text
    assert "--forwarded-allow-ips" in help_text
    # The help comes from the field's documentation in options.py.
    assert "accept queue length" in help_text


def test_server_option_flags_are_typed_and_only_given_ones_passed() -> None:
    config = parse_config(
        [
            "--keep-alive-timeout",
            "5.5",
            "--max-body-size",
            "none",
            "--backlog",
            "10",
            "--reuse-port",
            "--no-allow-bare-lf",
            "--forwarded-allow-ips",
            "127.0.0.1, 10.0.0.0/8",
        ]
    )
    assert config.options == {
        "keep_alive_timeout": 5.5,
        "max_body_size": None,
        "backlog": 10,
        "reuse_port": True,
        "allow_bare_lf": False,
        "trusted_proxies": ("127.0.0.1", "10.0.0.0/8"),
    }
    assert parse_config([]).options == {}


def test_binds() -> None:
    assert parse_config([]).binds == ()
    assert parse_config(["--port", "9000"]).binds == (BindSpec("tcp", "127.0.0.1", 9000),)
    assert parse_config(["--host", "::1"]).binds == (BindSpec("tcp", "::1", 8080),)
    config = parse_config(["-b", "unix:/tmp/x.sock", "--bind", "[::1]:1", "--host", "0.0.0.0"])
    assert [str(spec) for spec in config.binds] == ["unix:/tmp/x.sock", "[::1]:1", "0.0.0.0:8080"]


def test_threads_replace_the_old_workers_flag() -> None:
    config = parse_config(["--threads", "0", "--workers", "3", "--select", "select"])
    assert (config.threads, config.workers, config.backend) == (0, 3, "select")


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_config(["--max-requests", "-1"])
    assert exit_info.value.code == 2
    assert "--max-requests" in capsys.readouterr().err


def test_interface_and_its_wsgi_synonym() -> None:
    assert parse_config(["app:app"]).interface == "auto"
    config = parse_config(["--wsgi", "site.wsgi:application"])
    assert (config.app, config.interface) == ("site.wsgi:application", "wsgi")
    assert parse_config(["app:app", "--interface", "vestespy"]).interface == "vestespy"
    # --root-path is checked against the kind once the application is found (auto).
    assert parse_config(["app:app", "--root-path", "/x"]).root_path == "/x"


def test_sizes_and_durations_take_units() -> None:
    config = parse_config(
        [
            "--max-body-size",
            "10M",
            "--write-buffer-size",
            "64KiB",
            "--keep-alive-timeout",
            "2m",
            "--linger-timeout",
            "500ms",
            "--graceful-timeout",
            "1m30s",
        ]
    )
    assert config.options == {
        "max_body_size": 10 * 1024 * 1024,
        "write_buffer_size": 64 * 1024,
        "keep_alive_timeout": 120.0,
        "linger_timeout": 0.5,
    }
    assert config.graceful_timeout == 90.0
    help_text = build_parser().format_help()
    assert "--max-body-size SIZE" in help_text
    assert "--keep-alive-timeout DURATION" in help_text
