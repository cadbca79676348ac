"""The file names of a run folder, shared by the trainer that writes it and the readers.

Plots and reports read a run folder without training anything; keeping the
names here lets them do so without importing the trainer.
"""

MODEL_FILE = "model.keras"
SPEC_FILE = "spec.json"
HISTORY_FILE = "history.json"
EPOCHS_FILE = "epochs.txt"
REPORT_FILE = "report.json"
CONTRIBUTIONS_FILE = "contributions.json"
SELECTION_FILE = "selection.json"
