"""The file names of a run folder, shared by the trainer that writes it and the readers.

Plots and reports read a run folder without training anything; keeping the
names here lets them do so without importing the trainer.
"""

from pathlib import Path

MODEL_FILE = "model.keras"
SPEC_FILE = "spec.json"
HISTORY_FILE = "history.json"
EPOCHS_FILE = "epochs.txt"
REPORT_FILE = "report.json"
CONTRIBUTIONS_FILE = "contributions.json"
SELECTION_FILE = "selection.json"


def backup_folder(run_dir: str | Path) -> Path:
    """Where `mmtask train --resume` backs up the run it writes to `run_dir` after every epoch.

    A hidden folder beside the run folder, not inside: the run folder
    appears only once the run is saved, and the staging folders it is
    written in are removed as stale once their writer is gone.
    """
    run_dir = Path(run_dir)
    return run_dir.parent / f".{run_dir.name}.backup"
