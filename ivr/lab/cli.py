"""Command line of the lab: ``ivr lab up|down|status|cli|call|load`` (as root), also
``python -m ivr.lab ...``. Its commands are built into the ``ivr`` parser
(:func:`add_lab_commands`), so ``ivr lab --help`` and completion know them."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ivr.cli_conventions import Parser
from ivr.errors import LabError
from ivr.lab.lab import Lab

DESCRIPTION = """\
A real Asterisk in a Debian chroot, with SIPp to call it (as root).

  ivr lab up                      build (first time) and start Asterisk
  ivr lab call 100 --digits 1,2   one SIPp call to extension 100 (main)
  ivr lab down                    stop Asterisk and unmount
"""


def add_lab_commands(parser: argparse.ArgumentParser) -> None:
    """The lab's commands (up, down, status, cli, call, load) under ``parser``."""
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    up = sub.add_parser("up", help="build (first time) and start Asterisk")
    up.add_argument("--rebuild", action="store_true", help="debootstrap afresh, new cache")
    sub.add_parser("down", help="stop Asterisk and unmount (idempotent)")
    sub.add_parser("status", help="tree, cache, mounts, running or not")
    cli = sub.add_parser("cli", help='run an Asterisk CLI command, e.g. "core show channels"')
    cli.add_argument("asterisk_command", help="the command, quoted as one argument")
    for name, text in (("call", "place one SIPp call"), ("load", "offer many SIPp calls")):
        p = sub.add_parser(name, help=text)
        p.add_argument("ext", help="100 main, 200 bank, 400 speech")
        p.add_argument("--digits", default="", help="RFC 2833 digits, e.g. 1,2 or 12#")
        p.add_argument(
            "--hold-s",
            type=float,
            default=3.0,
            help="seconds on the line after the digits (or to wait for BYE)",
        )
        p.add_argument(
            "--expect-hangup",
            action="store_true",
            help="pass only if Asterisk hangs up within --hold-s",
        )
        p.add_argument(
            "--first-digit-after-s",
            type=float,
            default=1.0,
            help="seconds after the answer before the first digit",
        )
        p.add_argument("--digit-gap-s", type=float, default=1.0, help="seconds between digits")
        p.add_argument("--caller", default="sipp", help="caller id number (From user)")
        if name == "call":
            p.add_argument("--wav", type=Path, help="caller voice, streamed as RTP (A-law)")
            p.add_argument(
                "--voice-after-s",
                type=float,
                default=0.5,
                help="seconds after the answer before the voice",
            )
        else:
            p.add_argument("--calls", type=int, default=100, help="calls offered in all")
            p.add_argument("--rate", type=float, default=10, help="new calls per second")
            p.add_argument("--max-concurrent", type=int, default=500, help="calls up at once")


def _run(lab: Lab, args: argparse.Namespace) -> int:
    started = time.monotonic()
    if args.command == "up":
        how = lab.up(rebuild=args.rebuild)
        print(f"asterisk up ({how}) in {time.monotonic() - started:.1f} s")
        print(
            f"SIP passwords and the AMI secret: {lab.secrets_file} (root only; "
            "IVR_SIP_<user>_PASSWORD / IVR_AMI_SECRET in the environment win)"
        )
    elif args.command == "down":
        lab.down()
        print(f"asterisk down in {time.monotonic() - started:.1f} s")
    elif args.command == "status":
        status = lab.status()
        print(status)
        return 0 if status.running else 3
    elif args.command == "cli":
        print(lab.cli(args.asterisk_command), end="")
    elif args.command == "call":
        result = lab.call(
            args.ext,
            digits=args.digits,
            wav=args.wav,
            **_timing(args),
            voice_after_s=args.voice_after_s,
        )
        print(result)
        if not result.ok:
            print(f"scenario: {result.scenario}\n{result.errors}", file=sys.stderr)
        return 0 if result.ok else 1
    elif args.command == "load":
        load = lab.load(
            args.ext,
            calls=args.calls,
            rate=args.rate,
            max_concurrent=args.max_concurrent,
            digits=args.digits,
            **_timing(args),
        )
        print(load)
        return 0 if load.ok else 1
    return 0


def _timing(args: argparse.Namespace) -> dict[str, object]:
    return {
        "hold_s": args.hold_s,
        "expect_hangup": args.expect_hangup,
        "caller": args.caller,
        "first_digit_after_s": args.first_digit_after_s,
        "digit_gap_s": args.digit_gap_s,
    }


def run(args: argparse.Namespace) -> int:
    """Run the lab command ``args`` names; 2 with the message on a :class:`LabError`."""
    try:
        return _run(Lab(), args)
    except LabError as exc:
        print(f"lab: error: {exc}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    """``python -m ivr.lab``: the same commands as ``ivr lab``."""
    parser = Parser(prog="python -m ivr.lab", description=DESCRIPTION)
    add_lab_commands(parser)
    return run(parser.parse_args(argv))
