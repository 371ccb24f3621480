"""``python -m ymir_conformance init DIR``: a minimal conformant executor (detection; training, mining, infer)
in plain Python with no torch: a Dockerfile, /img-man templates + manifest, start.py and a dependency-free
TensorBoard event writer (tfevents.py). It passes ``pytest --image=<tag>`` (quick profile) as written."""
from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent
DEFAULT_BASE = "python:3.11-slim"

DOCKERFILE = """\
# A minimal YMIR executor made by `python -m ymir_conformance init`.
# The base needs python3 and PyYAML; pip installs PyYAML only when the base lacks it.
FROM {base}
RUN python3 -c "import yaml" 2>/dev/null || python3 -m pip install --no-cache-dir pyyaml
COPY img-man/ /img-man/
COPY app/ /app/
RUN chmod -R a+rX /img-man /app
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 HOME=/tmp
# The platform runs the image with no command (LC-02): this CMD is the task.
CMD ["python3", "/app/start.py"]
"""

TEMPLATES = {
    "manifest.yaml": "# object_type 2: detection (3 semantic segmentation, 4 instance segmentation)\nobject_type: 2\n",
    "training-template.yaml": "# Flat `key: value` pairs: the web UI shows each as one field (IM-04).\n"
                              "epochs: 3\nexport_format: det-voc:raw\n",
    "mining-template.yaml": "conf_threshold: 0.3\n",
    "infer-template.yaml": "conf_threshold: 0.3\n",
}

README = """\
# {name}

A minimal YMIR executor made by `python -m ymir_conformance init`: `app/start.py` is the task (standard library
and PyYAML), `app/tfevents.py` writes TensorBoard events without torch, `img-man/` holds what the platform reads
at registration. Replace the parts marked TODO in `app/start.py` with your model.

    docker build -t my/executor:dev .
    pytest --image=my/executor:dev                      # the conformance suite, quick profile
    python -m ymir_conformance workspace --task training --format det-voc --release 2.5 ws/
    docker run --rm -v $PWD/ws/in:/in:ro -v $PWD/ws/out:/out my/executor:dev   # see ws/README.txt
"""


def files(base: str = DEFAULT_BASE, name: str = "my-executor") -> dict[str, str]:
    """Relative path -> content of the skeleton."""
    out = {"Dockerfile": DOCKERFILE.format(base=base), "README.md": README.format(name=name),
           ".dockerignore": "*.md\n"}
    out.update({f"img-man/{k}": v for k, v in TEMPLATES.items()})
    for src in ("start.py", "tfevents.py"):
        out[f"app/{src}"] = (HERE / src).read_text(encoding="utf-8")
    return out


def write_skeleton(root: Path, base: str = DEFAULT_BASE, force: bool = False) -> list[Path]:
    """Write the skeleton under ``root``; refuses to overwrite an existing file unless ``force``."""
    content = files(base, root.resolve().name or "my-executor")
    clash = [rel for rel in content if (root / rel).exists()]
    if clash and not force:
        raise FileExistsError(f"{root} already holds {', '.join(clash)} (use --force to overwrite)")
    written = []
    for rel, text in content.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        if rel.endswith("start.py"):
            path.chmod(0o755)
        written.append(path)
    return written


__all__ = ["DEFAULT_BASE", "files", "write_skeleton"]
