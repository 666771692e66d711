"""The fault matrix: infrastructure faults injected into real runs, on both backends.

Each case runs `staging run` on the example app, injects one fault (a signal to the
harness, a killed service or worker, a taken port, a full or read-only disk, a second run
at once) and asserts the failure class, the exit code and that nothing of the run is left
on the machine. Each records its time to verdict in `.results.json`, from which
`python -m tests.faults.table` prints the README's "Reliability" table.
"""
