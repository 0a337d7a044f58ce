"""Progress reporting for long separations: a tqdm bar when tqdm is installed, else one line on
stderr that is rewritten in place."""

import sys


def bar(desc):
    """A callable(done, total) that shows progress and closes itself when done == total."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        tqdm = None
    state = {}

    def update(done, total):
        if tqdm is not None:
            if "bar" not in state:
                state["bar"] = tqdm(total=total, desc=desc, unit="window")
            state["bar"].update(done - state["bar"].n)
            if done >= total:
                state["bar"].close()
        else:
            end = "\n" if done >= total else ""
            print(f"\r{desc}: window {done}/{total}", end=end, file=sys.stderr, flush=True)

    return update
