"""A Kafka broker of its own that only speaks SASL_SSL, for the tests of the Kafka security
settings: a single-node KRaft broker started from the jars `scripts/services.sh` installs (the
shared broker is untouched), with certificates made here by ``openssl`` (a CA and the broker's
certificate for 127.0.0.1, PEM files), SCRAM-SHA-256/512 users created when its storage is
formatted and a PLAIN user, on free ports. Missing Java, jars or openssl fail the test saying
how to get them."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.proxy import free_port
from worker.kafka.client import kafka_client
from worker.kafka.topics import kafka_answers
from worker.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
HINT = (
    "the SASL_SSL tests start a broker of their own with `java` (17+) and `openssl` from the "
    "Kafka jars in .services/kafka/libs ($SERVICES_STATE_DIR/kafka/libs): `bash "
    "scripts/services.sh kafka-jars` installs them (and a JDK), as `up` does when it starts "
    "the local broker"
)
USER = "scram-client"
START_WITHIN = 90.0  # seconds for the broker to answer (two shared cores, JVM start)


@dataclass(frozen=True)
class SecureBroker:
    bootstrap: str
    cafile: Path
    username: str
    password: str
    log: Path

    def env(self, mechanism: str = "SCRAM-SHA-256", password: str | None = None) -> dict[str, str]:
        """The settings of a `revintel` process connecting through SASL_SSL."""
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "REVINTEL_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "REVINTEL_KAFKA_SASL_MECHANISM": mechanism,
            "REVINTEL_KAFKA_SASL_USERNAME": self.username,
            "REVINTEL_KAFKA_SASL_PASSWORD": self.password if password is None else password,
            "REVINTEL_KAFKA_SSL_CAFILE": str(self.cafile),
        }

    def settings(self, mechanism: str = "SCRAM-SHA-256") -> Settings:
        """The same, for a client in the test process."""
        return Settings(
            kafka_bootstrap_servers=self.bootstrap,
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_mechanism=mechanism,
            kafka_sasl_username=self.username,
            kafka_sasl_password=self.password,
            kafka_ssl_cafile=self.cafile,
        )


def kafka_libs() -> Path:
    state = Path(os.environ.get("SERVICES_STATE_DIR") or ROOT / ".services")
    libs = state / "kafka" / "libs"
    if not any(libs.glob("kafka_2.13-*.jar")):
        pytest.fail(f"no Kafka jars in {libs}: {HINT}", pytrace=False)
    return libs


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"`{name}` not found on PATH: {HINT}", pytrace=False)
    return found


def make_certificates(directory: Path) -> tuple[Path, Path]:
    """A CA (ca.pem) and the broker's key and certificate for 127.0.0.1 signed by it, in one
    PEM key store (broker-keystore.pem: PKCS#8 key, then the certificate)."""
    openssl = _tool("openssl")
    (directory / "leaf.ext").write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
    )
    rsa = ["-newkey", "rsa:2048", "-nodes", "-days", "2"]
    ca = ["-subj", "/CN=revintel test CA", "-addext", "basicConstraints=critical,CA:TRUE"]
    for args in (
        ["req", "-x509", *rsa, *ca, "-keyout", "ca.key", "-out", "ca.pem"],
        ["req", *rsa, "-subj", "/CN=127.0.0.1", "-keyout", "broker.key", "-out", "broker.csr"],
        ["x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-days", "2"],
    ):
        if args[0] == "x509":
            args += ["-CAcreateserial", "-extfile", "leaf.ext", "-out", "broker.pem"]
        subprocess.run([openssl, *args], check=True, capture_output=True, cwd=directory)
    keystore = directory / "broker-keystore.pem"
    pem = [(directory / name).read_text() for name in ("broker.key", "broker.pem")]
    keystore.write_text("".join(pem))
    return directory / "ca.pem", keystore


def _properties(
    directory: Path, port: int, controller: int, ca: Path, keystore: Path, passwords: dict
) -> Path:
    """Clients reach only the SASL_SSL listener (SCRAM-SHA-256, SCRAM-SHA-512, PLAIN); the
    broker talks to itself there too (SCRAM-SHA-512); the controller listens on loopback."""
    scram = "org.apache.kafka.common.security.scram.ScramLoginModule required"
    plain = "org.apache.kafka.common.security.plain.PlainLoginModule required"
    broker_pw, user_pw = passwords["broker"], passwords[USER]
    lines = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller}",
        "listeners": f"SASL_SSL://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
        "advertised.listeners": f"SASL_SSL://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "SASL_SSL",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL",
        "sasl.enabled.mechanisms": "SCRAM-SHA-256,SCRAM-SHA-512,PLAIN",
        "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
        "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config": f"{scram};",
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": (
            f'{scram} username="broker" password="{broker_pw}";'
        ),
        "listener.name.sasl_ssl.plain.sasl.jaas.config": f'{plain} user_{USER}="{user_pw}";',
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(keystore),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(ca),
        "ssl.client.auth": "none",
        "log.dirs": str(directory / "data"),
        "num.partitions": "3",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "3",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "group.initial.rebalance.delay.ms": "0",
    }
    path = directory / "server.properties"
    path.write_text("".join(f"{k}={v}\n" for k, v in lines.items()))
    return path


def _cluster_id() -> str:
    """What ``kafka-storage.sh random-uuid`` prints (base64url, no padding), without a JVM."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):  # Kafka never hands out ids that read as an option
            return text


def _java(directory: Path) -> list[str]:
    return [
        _tool("java"),
        "-Xms64m",
        "-Xmx384m",
        # a short-lived test broker: start fast rather than run fast
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",
        f"-Dlog4j2.configurationFile={ROOT / 'services' / 'kafka' / 'log4j2.yaml'}",
        f"-Dkafka.logs.dir={directory}",
        "-cp",
        f"{kafka_libs()}/*",
    ]


def _die_with_parent() -> None:
    """In the child: killed with the test process, so no broker outlives a killed run."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _tail(log: Path, lines: int = 40) -> str:
    text = log.read_text(errors="replace") if log.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def secure_broker(directory: Path) -> Iterator[tuple[SecureBroker, subprocess.Popen]]:
    """Start the broker in ``directory``; yields it (not yet answering: see
    :func:`wait_until_answering`) and its process; stops it on exit."""
    java = _java(directory)
    ca, keystore = make_certificates(directory)
    passwords = {USER: f"Scram-{secrets.token_urlsafe(12)}", "broker": secrets.token_urlsafe(12)}
    port, controller = free_port(), free_port()
    props = _properties(directory, port, controller, ca, keystore, passwords)
    log = directory / "kafka.log"
    scram = [
        f"SCRAM-SHA-{bits}=[name={name},password={passwords[name]}]"
        for name, bits in ((USER, 256), (USER, 512), ("broker", 512))
    ]
    storage = ["kafka.tools.StorageTool", "format", "-t", _cluster_id(), "-c", str(props)]
    with log.open("ab") as out:
        done = subprocess.run(
            [*java, *storage, *(a for s in scram for a in ("--add-scram", s))],
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=120,
        )
    if done.returncode != 0:
        pytest.fail(
            f"formatting the SASL_SSL broker's storage failed:\n{_tail(log)}", pytrace=False
        )
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [*java, "kafka.Kafka", str(props)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=directory,
            preexec_fn=_die_with_parent,
        )
    broker = SecureBroker(f"127.0.0.1:{port}", ca, USER, passwords[USER], log)
    try:
        yield broker, proc
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def wait_until_answering(broker: SecureBroker, proc: subprocess.Popen) -> None:
    """Until the broker accepts a SCRAM login over TLS (the project's own client options)."""
    client = kafka_client(broker.settings())
    deadline = time.monotonic() + START_WITHIN
    while True:
        if proc.poll() is not None:
            pytest.fail(f"the SASL_SSL broker exited ({proc.returncode}):\n{_tail(broker.log)}")
        try:
            await kafka_answers(client, within=2.0)
            return
        except Exception as exc:
            if time.monotonic() > deadline:
                pytest.fail(
                    f"the SASL_SSL broker did not answer within {START_WITHIN:g} s ({exc}):\n"
                    f"{_tail(broker.log)}"
                )
        await asyncio.sleep(0.5)
