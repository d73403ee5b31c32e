import sys
from pathlib import Path

# tests import small shared helpers (flowkit, fake_asterisk) as top-level modules
sys.path.insert(0, str(Path(__file__).parent))
