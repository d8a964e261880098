"""An S3 server on loopback for the remote tests: moto's standalone server, as a real process.

A process of its own, not moto's in-process mock, so that a test can kill it in the middle of a
`dvc push` and start it again on the same port, as a store that goes down and comes back.
Nothing starts at import; `started()` starts a server and stops it (terminate, then kill) when
its block ends, whatever the test did.

moto keeps its objects in memory. Started with `persist=True`, it also logs every request it
receives to a file (moto's recorder) and replays that log on the next start: what a store had
stored before it went down is still there when it comes back.
"""

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

# moto accepts any keys until IAM checks are switched on (require_keys); these are the usual
# placeholders of moto's own docs, never real credentials.
ACCESS_KEY_ID = "testing"
SECRET_ACCESS_KEY = "testing"
REGION = "us-east-1"
START_TIMEOUT = 60  # seconds; a loaded 2-core machine imports moto slowly
XML = {"s3": "http://s3.amazonaws.com/doc/2006-03-01/", "iam": "https://iam.amazonaws.com/doc/2010-05-08/"}


def free_port() -> int:
    """A TCP port nothing listens on now (the kernel's pick), for the server to bind."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def credentials_env(directory: Path) -> dict[str, str]:
    """The variables that give DVC's S3 plugin (botocore underneath) the test keys, and nothing else.

    The config and credentials files point into `directory`, where there are none, so that a
    developer's ~/.aws (a profile, a region, real keys) cannot change what the tests see.
    """
    return {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(directory / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(directory / "aws-credentials"),
    }


class S3Server:
    """moto's S3 server on 127.0.0.1:`port`; its log and request recording live in `directory`."""

    def __init__(self, directory: Path, persist: bool = False):
        self.directory = directory
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.persist = persist
        self.process: subprocess.Popen | None = None
        directory.mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        """Start the server on this server's port and wait until it answers."""
        environment = {**os.environ, **credentials_env(self.directory)}
        if self.persist:
            environment |= {"MOTO_ENABLE_RECORDING": "1", "MOTO_RECORDER_FILEPATH": str(self.recording)}
        with open(self.directory / "server.log", "a") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.wait_until_answering()
        if self.persist and self.recording.exists():
            self.replay()

    @property
    def recording(self) -> Path:
        return self.directory / "requests.jsonl"

    def wait_until_answering(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                log = (self.directory / "server.log").read_text()
                raise AssertionError(f"moto server ended ({self.process.returncode}):\n{log}")
            try:
                with urllib.request.urlopen(f"{self.url}/moto-api/data.json", timeout=2):
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    raise AssertionError(f"moto server not answering on {self.url} after {START_TIMEOUT} s") from None
                time.sleep(0.1)

    def replay(self) -> None:
        """Re-apply the recorded requests: the state the last server had when it went down."""
        self.recording.write_text("".join(json.dumps(entry) + "\n" for entry in recorded(self.recording)))
        self.moto_api("recorder/replay-recording", b"")

    def kill(self) -> None:
        """SIGKILL: the store goes down at once, mid-request, as a crashed host would."""
        self.process.kill()
        self.process.wait(30)

    def stop(self) -> None:
        """Terminate, then kill if it has not ended within 10 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()

    def moto_api(self, path: str, body: bytes) -> bytes:
        """POST to moto's own control API (not S3), which no IAM check applies to."""
        return self.http("POST", f"/moto-api/{path}", body)

    def http(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> bytes:
        """An unsigned request, which moto answers for buckets and listings while its IAM checks
        are off (the default). Plain HTTP rather than boto3, which is no pin of ours (it comes
        with moto): the few calls the tests make need no more."""
        # Never urllib's default form type for a body: the server would parse it as a form
        headers = {"Content-Type": "application/octet-stream", **(headers or {})}
        request = urllib.request.Request(self.url + path, data=body, headers=headers, method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read()

    def create_bucket(self, bucket: str) -> None:
        self.http("PUT", f"/{bucket}")

    def buckets(self) -> list[str]:
        listing = ElementTree.fromstring(self.http("GET", "/"))
        return sorted(name.text for name in listing.iterfind(".//s3:Bucket/s3:Name", XML))

    def objects(self, bucket: str) -> dict[str, int]:
        """Every object's key and size in `bucket`."""
        found, query = {}, "list-type=2"
        while True:
            listing = ElementTree.fromstring(self.http("GET", f"/{bucket}?{query}"))
            for item in listing.iterfind("s3:Contents", XML):
                found[item.findtext("s3:Key", namespaces=XML)] = int(item.findtext("s3:Size", namespaces=XML))
            token = listing.findtext("s3:NextContinuationToken", namespaces=XML)
            if not token:
                return found
            query = urllib.parse.urlencode({"list-type": 2, "continuation-token": token})

    def user_with_keys(self, name: str) -> dict[str, str]:
        """An IAM user allowed everything on S3; its key pair as `dvc remote modify` names them."""
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        self.iam(Action="CreateUser", UserName=name)
        self.iam(Action="PutUserPolicy", UserName=name, PolicyName="s3", PolicyDocument=json.dumps(policy))
        key = self.iam(Action="CreateAccessKey", UserName=name).find(".//iam:AccessKey", XML)
        return {
            "access_key_id": key.findtext("iam:AccessKeyId", namespaces=XML),
            "secret_access_key": key.findtext("iam:SecretAccessKey", namespaces=XML),
        }

    def iam(self, **parameters: str) -> ElementTree.Element:
        """Call IAM on the same server. moto picks the service from the credential scope of the
        Authorization header, and checks no signature while its IAM checks are off."""
        body = urllib.parse.urlencode({**parameters, "Version": "2010-05-08"}).encode()
        scope = f"{ACCESS_KEY_ID}/20260101/{REGION}/iam/aws4_request"
        headers = {
            "Authorization": f"AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders=host, Signature=unchecked",
            "Content-Type": "application/x-www-form-urlencoded",
        }
        return ElementTree.fromstring(self.http("POST", "/", body, headers))

    def require_keys(self) -> None:
        """From now on refuse any request not signed with an IAM user's keys (moto's IAM checks)."""
        self.moto_api("reset-auth", b"0")

    def accept_any_keys(self) -> None:
        """Back to moto's default: no IAM checks (so that a test can look at what is stored)."""
        self.moto_api("reset-auth", b"inf")


def recorded(path: Path) -> list[dict]:
    """The requests in moto's recording, read as a stream of JSON values rather than lines.

    The server's threads append a request and its newline in two writes, so two requests at
    once can share a line; a kill can cut the last one short, and that one is dropped (a store
    that dies mid-write loses that write).
    """
    text, decoder, entries, position = path.read_text(), json.JSONDecoder(), [], 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position == len(text):
            return entries
        try:
            entry, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError:
            return entries
        entries.append(entry)


@contextlib.contextmanager
def started(directory: Path, persist: bool = False) -> Iterator[S3Server]:
    server = S3Server(directory, persist)
    try:
        server.start()
        yield server
    finally:
        server.stop()
