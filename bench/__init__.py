"""openbai's benchmarks, run by hand: ``python -m bench <name> [options]``.

Each module ``bench/<name>.py`` has ``main(argv) -> int`` and prints its measurements next to
a reference measured in the same run, as a ratio.
"""
