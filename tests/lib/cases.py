"""The case runner shared by the end-to-end test scripts (tests/guest/
test_direct.py, tests/api/test_api.py): each defines case_NAME functions
and calls run_main(globals(), __doc__).

usage: SCRIPT WISP GUEST_ELF CASE   (or --list)
Exit status: 0 pass, 1 fail, 77 skip (meson's skip code; scripts/test.sh
reports a skip as a skip, never as a pass), 2 usage.
"""
import os
import subprocess
import sys


class Fail(Exception):
    pass


class Skip(Exception):
    pass


def cases(g):
    return {k[5:]: v for k, v in g.items() if k.startswith("case_")}


def run_main(g, doc):
    """Runs the case named on the command line; WISP and GUEST are set in
    the calling script's globals g."""
    all_cases = cases(g)
    if sys.argv[1:] == ["--list"]:
        print("\n".join(all_cases))
        return 0
    if len(sys.argv) != 4 or sys.argv[3] not in all_cases:
        print(doc, file=sys.stderr)
        return 2
    g["WISP"], g["GUEST"], name = sys.argv[1:]
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        print(f"FAIL {name}: /dev/kvm is not accessible")
        return 1
    try:
        all_cases[name]()
    except Fail as e:
        print(f"FAIL {name}: {e}")
        return 1
    except Skip as e:
        print(f"SKIP {name}: {e}")
        return 77
    except subprocess.TimeoutExpired as e:
        print(f"FAIL {name}: timeout: {e}")
        return 1
    print(f"PASS {name}")
    return 0
