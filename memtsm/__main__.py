"""``python -m memtsm`` (also what ``torchrun -m memtsm`` runs)."""

from memtsm.cli import app

if __name__ == "__main__":
    app()
