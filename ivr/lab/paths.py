"""Where the lab keeps things: the chroot tree, its cache, its state, and what goes in it."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

SUITE = "sid"
PACKAGES = ("asterisk", "asterisk-modules", "asterisk-core-sounds-en")
SOUNDS_SUBDIR = "usr/share/asterisk/sounds/ivr"  # STREAM FILE ivr/... -> prompts/...
REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class LabPaths:
    """Where the lab keeps things. Defaults can be moved with IVR_LAB_* variables."""

    repo: Path
    root: Path  # the chroot tree (outside the work tree: `git clean` never meets mounts)
    cache: Path  # the zstd tarball of a freshly built tree
    state: Path  # generated secrets, SIPp scenarios and logs (git-ignored .lab/)

    @classmethod
    def default(cls, repo: Path = REPO) -> LabPaths:
        """The paths for ``repo``, moved by IVR_LAB_ROOT, IVR_LAB_CACHE, IVR_LAB_STATE."""
        env = os.environ.get
        return cls(
            repo=repo,
            root=Path(env("IVR_LAB_ROOT", "/var/lib/ivr-lab/root")),
            cache=Path(env("IVR_LAB_CACHE", "/var/cache/ivr-lab")),
            state=Path(env("IVR_LAB_STATE", str(repo / ".lab"))),
        )

    @property
    def conf(self) -> Path:
        return self.repo / "asterisk-conf"

    @property
    def prompts(self) -> Path:
        return self.repo / "prompts"

    @property
    def recordings(self) -> Path:
        """Where Asterisk writes recordings (call legs, messages) for ``ivr serve`` to read:
        bind-mounted read-write in the tree at the same absolute path, so a path the server
        hands to ``MixMonitor`` or ``RECORD FILE`` names the same file on both sides."""
        return self.state / "recordings"

    @property
    def tarball(self) -> Path:
        key = hashlib.sha256(" ".join((SUITE, *PACKAGES)).encode()).hexdigest()[:10]
        return self.cache / f"asterisk-{SUITE}-{key}.tar.zst"

    @property
    def mountpoints(self) -> tuple[Path, ...]:
        """Innermost first: the unmount order."""
        inside = self.root / self.recordings.resolve().relative_to("/")
        return (inside, self.root / SOUNDS_SUBDIR, self.root / "dev/pts", self.root / "proc")
