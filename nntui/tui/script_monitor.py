"""`nntui run SCRIPT.py` in the app: the script as the app's child run, and a monitor that also
shows the script's output (the run's output.log) in its log pane. No torch here."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Sequence

from nntui.fs import RunDir
from nntui.tui.launcher import ChildRun
from nntui.tui.monitor import MonitorScreen

OUTPUT_POLL_S = 0.25
OUTPUT_CHUNK = 64 * 1024  # read per poll at most: a script printing floods does not stall the app
OUTPUT_KIND = "output"  # the log lines' kind (drawn unstyled)


class ScriptRun(ChildRun):
    """The user's script (`command`, `python SCRIPT.py ARGS`) writing to `run_dir`, which
    `nntui run` has made. Like a preset's child it runs in its own session and outlives the app;
    its stdout and stderr go to the run's output.log, which it keeps."""

    def __init__(self, script: Path, command: Sequence[str], run_dir: Path) -> None:
        self.script, self.argv = Path(script), list(command)
        self.config = None
        self.fork_args: list[str] = []
        self.resume_dir = None
        self.resume_args: list[str] = []
        self.run_dir = Path(run_dir).absolute()
        self.runs_dir, self.name = self.run_dir.parent, self.run_dir.name
        self.data_dir = None
        self.config_path = None
        self.stderr_path = self.run_dir / RunDir.OUTPUT_LOG  # its last line is the error the monitor shows
        self.process = None

    def command(self) -> list[str]:
        return list(self.argv)

    def start(self) -> None:
        from nntui.cli.script import start_script

        self.process = start_script(self.argv, self.run_dir, stdin=subprocess.DEVNULL)

    def last_error_line(self) -> str:
        """The script's last line of output; for a script that never made a Monitor, that first."""
        from nntui.cli.script import never_monitored

        last = super().last_error_line()
        never = never_monitored(self.script, self.run_dir)
        return f"{never}; its last line: {last}" if never and last else never or last

    def cleanup(self) -> None:
        """Nothing to remove: the output log is the run's."""

    def monitor_screen(self) -> MonitorScreen:
        return ScriptMonitorScreen(self)


class ScriptMonitorScreen(MonitorScreen):
    """The monitor of a script's run; the script's output comes into the log as it is written."""

    def __init__(self, child: ScriptRun) -> None:
        super().__init__(child.run_dir, "run", child=child)
        self.output = OutputTail(RunDir(child.run_dir).path / RunDir.OUTPUT_LOG)

    def on_mount(self) -> None:
        super().on_mount()
        self.set_interval(OUTPUT_POLL_S, self.show_output)

    def show_output(self) -> None:
        for line in self.output.poll():
            self.state.note(line, OUTPUT_KIND)


class OutputTail:
    """The complete lines appended to a text file since the last poll."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset, self.partial = path, 0, b""

    def poll(self) -> list[str]:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                data = handle.read(OUTPUT_CHUNK)
        except OSError:
            return []
        self.offset += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        return [line.decode("utf-8", errors="replace").rstrip("\r") for line in lines]
