"""The outputs the docs show for the committed model, recorded for benchmarks/render.py.

`python -m pipeline.predict` on examples/ and the service's answers to the same images, run
here on the workspace's model (`dvc pull` or `dvc repro` first). Nothing is timed: the same
model gives the same record on any machine.

    python benchmarks/examples.py
"""

import subprocess
import sys

import httpx
import records

from common import ENV, ROOT

# Each command the docs show, as typed there; `python -m pipeline.predict` runs as written.
PREDICT = (
    "python -m pipeline.predict examples/ --top 2",
    "python -m pipeline.predict examples/pen-4.png --json",
)
URL = "localhost:8765"  # what the docs' curl lines name; the recorded server listens on a free port


def form(*names: str) -> list[tuple[str, tuple[str, bytes]]]:
    return [("image", (name, (ROOT / "examples" / name).read_bytes())) for name in names]


# (the curl line the docs show, whether it prints the status, the same request made with httpx)
REQUESTS = (
    (
        f"curl -s -F image=@examples/pen-4.png -F image=@examples/marker-7.png {URL}/predict",
        False,
        lambda client: client.post("/predict", files=form("pen-4.png", "marker-7.png")),
    ),
    (
        f'curl -s --data-binary @examples/pen-4.png -H "Content-Type: image/png" {URL}/predict',
        False,
        lambda client: client.post(
            "/predict", content=(ROOT / "examples/pen-4.png").read_bytes(), headers={"content-type": "image/png"}
        ),
    ),
    (
        f'curl -s -w " %{{http_code}}\\n" -F image=@examples/blank.png -F image=@README.md {URL}/predict',
        True,
        lambda client: client.post(
            "/predict", files=[*form("blank.png"), ("image", ("README.md", (ROOT / "README.md").read_bytes()))]
        ),
    ),
    (f'curl -s -w " %{{http_code}}\\n" {URL}/predict', True, lambda client: client.get("/predict")),
)


def predict(command: str) -> dict:
    """A predict command's output (stdout and stderr as they interleave) and exit code."""
    args = [sys.executable, *command.split()[1:]]
    result = subprocess.run(args, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return {"command": command, "output": result.stdout, "exit_code": result.returncode}


def serve() -> tuple[list[dict], dict]:
    """Each of REQUESTS sent to `python -m pipeline.serve` on a free port, the body as sent back;
    and the model that answered (GET /model's file and md5)."""
    command = [sys.executable, "-m", "pipeline.serve", "--port", "0"]
    server = subprocess.Popen(command, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        if not line.startswith("serving "):
            sys.exit(f"the server did not start: {line!r}")
        base = line.split(" on ")[1].split(";")[0]
        with httpx.Client(base_url=base, timeout=30) as client:
            answers = []
            for curl, status, send in REQUESTS:
                response = send(client)
                shown = {"curl": curl, "show_status": status, "status": response.status_code, "body": response.text}
                answers.append(shown)
            model = client.get("/model").json()
            return answers, {"file": model["file"], "md5": model["md5"]}
    finally:
        server.terminate()
        server.wait(30)


def main() -> None:
    run = records.start("examples", sys.argv[1:])
    answers, model = serve()
    values = {"model": model, "predict": [predict(command) for command in PREDICT], "serve": answers}
    for shown in values["predict"]:
        print(f"$ {shown['command']}\n{shown['output']}", end="")
    for answer in values["serve"]:
        print(f"$ {answer['curl']}\n{answer['body']}")
    records.write(run, values)


if __name__ == "__main__":
    main()
