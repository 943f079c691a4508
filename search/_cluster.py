"""Starting Ray or joining a running cluster (`--address`), refused in one line and a bounded time when it cannot be.

Ray's own client, left alone, hangs for minutes on an address where nothing answers and ends in a traceback on a
cluster that refuses it. Ray 2.60's `ray start` turns on token authentication, but a client given an explicit
address does not send the token unless `RAY_AUTH_MODE=token` is set: tpsearch turns it on, as Ray does for
`--address auto`, when a token is at hand (`RAY_AUTH_TOKEN`, `RAY_AUTH_TOKEN_PATH` or `~/.ray/auth_token`, where
`ray start` writes it), so the README's recipe works as written. Ray is joined before the study is opened, so a
refused cluster leaves the storage untouched.
"""
from __future__ import annotations

import logging
import os
import socket
import sys
import tempfile
import threading

from tpsearch.exceptions import UsageError

def start_ray(address: str | None, connect_timeout: float) -> bool:
    """Start a local Ray instance, or join the cluster at `address`; False when the caller's Ray session is reused
    (tests, notebooks)."""
    import ray

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # the study holds the results
    os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "0")
    # Trials score the validation split only at ASHA's rungs and at the end; the reports between carry no metric.
    os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")
    # A reused worker waits this long for the stopped trial's training thread to end before it takes the next
    # trial. Ray's 2 s default is too short on a loaded machine: the reuse then fails ("Trainable runner reuse
    # requires reset_config()") and Ray Tune leaves that trial pending forever, a search that hangs in silence.
    # Read by the workers, which a local Ray starts with this environment.
    os.environ.setdefault("TUNE_FUNCTION_THREAD_TIMEOUT_S", "120")
    if ray.is_initialized():
        return False
    address = cluster_address(address)
    if address is None:
        # Always a fresh local instance: plain ray.init() would join any cluster that `ray start` left running on
        # this machine, which the user did not ask for.
        ray.init(address="local", logging_level=logging.ERROR, log_to_driver=False, include_dashboard=False)
        return True
    join(address, connect_timeout)
    return True


def cluster_address(address: str | None) -> str | None:
    """The cluster to join: `--address`, else the one Ray names in RAY_ADDRESS (under `ray job submit` the driver
    runs inside the cluster), else None (a fresh local Ray)."""
    return address or os.environ.get("RAY_ADDRESS") or None


def join(address: str, timeout: float) -> None:
    """`ray.init(address)`, or one `UsageError` naming the address and the fix within about `timeout` seconds."""
    import ray

    if address != "auto":
        probe(address, timeout)
    send_token_if_at_hand()
    # Ray's Python side retries the head's GCS about once a second for this long before it gives up.
    os.environ.setdefault("RAY_gcs_server_port_wait_time_s", str(max(1, int(timeout / 2))))
    # Ray's C++ client logs each failed attempt straight to file descriptor 2; held aside, they become part of the
    # one-line error, or are replayed as they were when the cluster was joined.
    with _deadline(address, timeout), _stderr_held() as held:
        try:
            ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
            held.replay = True  # joined: what Ray said on the way is the user's to read
            return
        except (ConnectionError, RuntimeError, ValueError, SystemExit) as e:
            error, text = e, f"{e} {e.__cause__ or ''} {held.text()}"
    raise UsageError(_explain(address, error, text)) from None


def on_another_host(address: str | None) -> bool:
    """Whether `address` names a cluster whose head is not this machine (`auto` and loopback are this one);
    asked once Ray is joined."""
    if not address or address == "auto":
        return False
    import ray.util

    host = address.rpartition(":")[0].strip("[]")
    try:
        ip = socket.gethostbyname(host)
    except OSError:
        return True
    # The address Ray itself uses for this machine (the one `ray start` prints), not the host name's.
    return not (ip.startswith("127.") or ip == ray.util.get_node_ip_address())


def probe(address: str, timeout: float) -> None:
    """A TCP connection to the head's port: an address where nothing listens is refused in milliseconds."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--address must be HOST:PORT (the head's `ray start --head --port`) or auto, got "
                         f"{address!r}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=min(timeout, 10.0)).close()
    except OSError as e:
        raise UsageError(f"no Ray cluster answers at {address} ({e.strerror or type(e).__name__}): start one "
                         f"there with `ray start --head --port {port}`, or give the head's HOST:PORT") from None


def send_token_if_at_hand() -> None:
    """What Ray does itself for `address="auto"`: with RAY_AUTH_MODE unset and a token at hand, use it (a cluster
    without authentication ignores it). The mode must reach Ray's already loaded config, hence Ray's own helper."""
    try:
        from ray._private.authentication import authentication_token_setup as setup
    except ImportError:  # a Ray before token authentication: nothing to send
        return
    quiet = logging.getLogger(setup.__name__)
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # its warning is written for a head starting up, not for a client
    try:
        setup.maybe_enable_token_auth_if_token_available(warn_if_disabled=False)
    finally:
        quiet.setLevel(level)


def _explain(address: str, error: BaseException, text: str) -> str:
    lowered = text.lower()
    if "unauthenticated" in lowered or "token" in lowered:  # Ray's "Unauthenticated: ... InvalidAuthToken"
        return (f"the Ray cluster at {address} refused this client's authentication token: copy the head's "
                f"~/.ray/auth_token to this machine (or set RAY_AUTH_TOKEN to it) and keep RAY_AUTH_MODE=token")
    if "version mismatch" in lowered:
        return (f"the Ray cluster at {address} runs another Ray or Python version than this machine "
                f"({_versions()}): install the cluster's versions here, or submit with `ray job submit`")
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return f"could not join the Ray cluster at {address}: {first}; check that `ray status` works there"


def _versions() -> str:
    import ray

    return f"Ray {ray.__version__}, Python {sys.version.split()[0]}"


class _Held:
    def __init__(self, file: "tempfile._TemporaryFileWrapper[bytes]") -> None:
        self.file, self.replay = file, False

    def text(self) -> str:
        self.file.seek(0)
        return self.file.read().decode(errors="replace")


class _stderr_held:
    """File descriptor 2 redirected to a temporary file while Ray connects (its C++ client writes there)."""

    def __enter__(self) -> _Held:
        sys.stderr.flush()
        self.file = tempfile.TemporaryFile()
        self.saved = os.dup(2)
        os.dup2(self.file.fileno(), 2)
        self.held = _Held(self.file)
        return self.held

    def __exit__(self, *exc: object) -> None:
        sys.stderr.flush()
        os.dup2(self.saved, 2)
        os.close(self.saved)
        if self.held.replay:
            sys.stderr.write(self.held.text())
        self.file.close()


class _deadline:
    """Ray's client blocks in C++ for minutes where something that is no Ray head answers the port; no exception
    reaches it there. Past `timeout` seconds the process ends the way a refused address does (one line, exit 2):
    nothing has been written yet, Ray is joined before the study is opened."""

    def __init__(self, address: str, timeout: float) -> None:
        self.address, self.timeout = address, timeout

    def __enter__(self) -> None:
        self.saved = os.dup(2)  # the terminal's stderr, whatever fd 2 holds when the deadline strikes
        self.timer = threading.Timer(self.timeout, self._give_up)
        self.timer.daemon = True
        self.timer.start()

    def __exit__(self, *exc: object) -> None:
        self.timer.cancel()
        os.close(self.saved)

    def _give_up(self) -> None:
        os.write(self.saved, (f"tpsearch run: error: no Ray cluster joined at {self.address} within "
                              f"--connect-timeout {self.timeout:g} s: check the address with `ray status --address "
                              f"{self.address}` there, or raise --connect-timeout\n").encode())
        os._exit(2)
