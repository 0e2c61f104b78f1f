"""What masking secrets costs once a run knows many tokens: scrub time and index memory.

    .venv/bin/python benchmarks/redaction.py [--baseline TREE] [--tokens 10000]

Registers ``--tokens`` JWT-shaped tokens (as a password profile over that many
Airflow 3 servers fetches) and five configured secrets, then times ``scrub``
on a 290-character server reason, and on one quoting a token cut at 300
characters (a bounded reason), and says whether any 200-character part of
that token survived. ``--baseline TREE`` (a checkout, e.g. from ``git
worktree add``) runs the same in that tree's ``src``, side by side, each tree
in a process of its own (the registry is process-wide).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

MEASURE = r"""
import json, secrets, sys, timeit, tracemalloc
sys.path.insert(0, sys.argv[1])
from airfleet import redaction
ends = "parts" in redaction.register.__code__.co_varnames
count = int(sys.argv[2])
tokens = [
    "eyJhbGciOiJIUzI1NiJ9." + secrets.token_urlsafe(300) + "." + secrets.token_urlsafe(32)
    for _ in range(count)
]
tracemalloc.start()
for token in tokens:
    redaction.register(token, parts="ends") if ends else redaction.register(token)
for _ in range(5):
    redaction.register(secrets.token_urlsafe(24))
memory = tracemalloc.get_traced_memory()[0]
tracemalloc.stop()
reason = "HTTP 401: " + "x" * 280
quoting = f"HTTP 401: refused Bearer {tokens[count // 2]}"[:300]
n = 300
plain = min(timeit.repeat(lambda: redaction.scrub(reason), number=n, repeat=3)) / n
quoted = min(timeit.repeat(lambda: redaction.scrub(quoting), number=n, repeat=3)) / n
print(json.dumps({
    "index_mib": memory / 2**20,
    "plain_us": plain * 1e6,
    "quoting_us": quoted * 1e6,
    "cut_token_shown": tokens[count // 2][:200] in redaction.scrub(quoting),
}))
"""


def measure(tree: Path, tokens: int) -> dict[str, float | bool]:
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, str(tree / "src"), str(tokens)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result: dict[str, float | bool] = json.loads(out)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, help="another checkout to compare with")
    parser.add_argument("--tokens", type=int, default=10_000)
    args = parser.parse_args()
    trees = [("this tree", ROOT)]
    if args.baseline is not None:
        trees.insert(0, ("baseline", args.baseline))
    print(
        "| tree | index MiB | scrub, 290-char reason "
        "| scrub, reason quoting a cut token | cut token shown |"
    )
    print("| --- | --- | --- | --- | --- |")
    for name, tree in trees:
        r = measure(tree, args.tokens)
        print(
            f"| {name} | {r['index_mib']:.1f} | {r['plain_us']:.0f} us | "
            f"{r['quoting_us']:.0f} us | {'yes' if r['cut_token_shown'] else 'no'} |"
        )


if __name__ == "__main__":
    main()
