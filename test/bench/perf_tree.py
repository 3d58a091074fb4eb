"""
test/bench/perf_tree.py
    Where the time under one function goes, from `perf script` output.

    perf record -F 1000 --call-graph dwarf,16384 -p BACKEND_PID -- sleep 5
    perf script > perf.txt
    /usr/bin/python3 test/bench/perf_tree.py perf.txt read_history [DEPTH]

Prints the share of all samples that have FUNCTION on their stack, then the
functions it calls (DEPTH levels, default 1) by their share of all samples
and of FUNCTION's.  Used for the profiles in README.md; not run by run.sh.
"""
import collections
import sys


def main():
    path, root = sys.argv[1], sys.argv[2]
    depth = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    total = 0
    inroot = 0
    counts = collections.Counter()

    def flush(stack):
        nonlocal total, inroot
        if not stack:
            return
        total += 1
        if root in stack:			# stack is leaf first
            inroot += 1
            i = stack.index(root)
            counts[" > ".join(stack[max(0, i - depth):i][::-1]) or "(self)"] += 1

    stack = []
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                flush(stack)
                stack = []
            elif line[0] in " \t":
                parts = line.strip().split(None, 1)
                if len(parts) == 2:
                    stack.append(parts[1].rsplit(" (", 1)[0].split("+0x")[0])
            else:
                flush(stack)
                stack = []
    flush(stack)
    if not total:
        sys.exit("no samples")
    print("samples %d, with %s on the stack: %d (%.1f%%)"
          % (total, root, inroot, 100.0 * inroot / total))
    for k, v in counts.most_common(20):
        print("%6.1f%% of all %6.1f%% of %s  %s"
              % (100.0 * v / total, 100.0 * v / max(inroot, 1), root, k))


if __name__ == "__main__":
    main()
