#!/usr/bin/env python3
"""Coverage-guided fuzzing (atheris, i.e. libFuzzer for Python) of the wire parsers and the
RTP session: long runs of the same checks the bounded hypothesis tests in tests/fuzz run.

    pip install atheris
    python scripts/fuzz.py TARGET [--corpus DIR] [--all] [-- LIBFUZZER_OPTIONS...]

Targets (each check is in tests/fuzz/targets.py):

    rtp      RtpPacket.parse raises only RtpError; what parses serialises back to the input
    rtcp     parse_rtcp (lenient and strict) raises only RtcpError; RFC 3550 A.2 structure
    sdp      parse_sdp raises only SdpError, answer_offer only NegotiationError; usable answers
    sip      parse_message raises only SipParseError and round-trips; a SipEndpoint fed the
             datagram has no internal error and sends only messages that parse
    session  RtpSession fed datagrams from several addresses (byte layout: first byte the
             codec, then per datagram a control byte and a length byte): never raises,
             counters consistent (tests/fuzz/targets.py: run_session)

Examples:

    python scripts/fuzz.py rtp -- -runs=100000
    python scripts/fuzz.py sdp -- -max_total_time=3600
    python scripts/fuzz.py session --corpus fuzz-corpus/session -- -max_total_time=600 -jobs=2
    python scripts/fuzz.py sip -- crash-0123abcd          # replay one input (a file, not a dir)

Everything after ``--`` goes to libFuzzer (-runs, -max_total_time, -max_len, -jobs, -seed,
-artifact_prefix=..., input files to replay...). The corpus directory (default: a per-target
directory under the system temp dir) is seeded with a few valid messages when empty and grows
as the fuzzer finds new coverage. A failure stops the run, prints the Python traceback and
writes the input as ``crash-<sha1>`` (in the working directory unless -artifact_prefix says
otherwise); turn it into a test (tests/fuzz/test_fuzz_*.py) before fixing it.

Known issues (bugs recorded as strict-xfail tests, see KNOWN_ISSUES in tests/fuzz/targets.py)
are skipped so a long run looks for new ones; ``--all`` reports them like any other failure.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TARGET_NAMES = ("rtp", "rtcp", "sdp", "sip", "session")


def _import_atheris() -> Any:
    try:
        import atheris
    except ImportError:
        sys.exit("scripts/fuzz.py needs atheris (coverage-guided fuzzing): pip install atheris\n"
                 "(for short property-based runs without it: python -m pytest tests/fuzz)")
    return atheris


def main(argv: list[str]) -> None:
    cut = argv.index("--") if "--" in argv else len(argv)
    ours, libfuzzer = argv[:cut], argv[cut + 1:]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", choices=TARGET_NAMES)
    parser.add_argument("--corpus", type=Path, help="corpus directory (created and seeded when empty)")
    parser.add_argument("--all", action="store_true", help="also fail on known issues (xfail-recorded bugs)")
    args = parser.parse_args(ours)
    atheris = _import_atheris()

    sys.path.insert(0, str(ROOT))
    # Instrument the project (bridge, bridge_codecs, the checks) for coverage feedback.
    with atheris.instrument_imports(include=["bridge", "bridge_codecs", "tests"]):
        from tests.fuzz import targets

    targets.SKIP_KNOWN = not args.all
    check = targets.TARGETS[args.target]

    corpus = args.corpus or Path(tempfile.gettempdir()) / "tutti-fuzz-corpus" / args.target
    corpus.mkdir(parents=True, exist_ok=True)
    if not any(corpus.iterdir()):
        for seed in targets.seeds()[args.target]:
            (corpus / hashlib.sha1(seed).hexdigest()).write_bytes(seed)
    replay = [a for a in libfuzzer if not a.startswith("-")]
    inputs = replay if replay else [str(corpus)]
    options = [a for a in libfuzzer if a.startswith("-")]
    print(f"fuzzing {args.target} ({'all failures' if args.all else 'known issues skipped'}), "
          f"corpus {inputs[0] if not replay else 'replay'}", file=sys.stderr)

    def test_one_input(data: bytes) -> None:
        check(data)

    atheris.Setup([sys.argv[0], *options, *inputs], test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv[1:])
