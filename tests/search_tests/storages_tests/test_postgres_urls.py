"""PostgreSQL URLs as users write them, and a storage password that no output, page or checkpoint shows."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from tpsearch import cli

PASSWORD = "s3cr3t-Pw-4242"  # distinctive: found anywhere, it leaked


@pytest.fixture
def own_database(postgres_url):
    """A role with its own password and an empty database it owns, made through the test server's superuser."""
    role = db = f"tpsearch_pw_{os.getpid()}"
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        c.execute(sa.text(f"DROP ROLE IF EXISTS {role}"))
        c.execute(sa.text(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'"))
        c.execute(sa.text(f"CREATE DATABASE {db} OWNER {role}"))
    host = sa.engine.make_url(postgres_url)
    yield f"{role}:{PASSWORD}@{host.host}:{host.port or 5432}/{db}"
    with admin.connect() as c:
        c.execute(sa.text(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        c.execute(sa.text(f"DROP ROLE IF EXISTS {role}"))
    admin.dispose()


def _leaks(folder: Path) -> list[str]:
    return [str(p) for p in folder.rglob("*") if p.is_file() and PASSWORD.encode() in p.read_bytes()]


def test_both_url_forms_work_and_the_password_shows_nowhere(ray_session, own_database, tmp_path, capsys):
    plain, psycopg2 = f"postgresql://{own_database}", f"postgresql+psycopg2://{own_database}"
    out: list[str] = []

    def run(*args: str) -> None:
        assert cli.main(list(args)) == 0
        captured = capsys.readouterr()
        out.append(captured.out + captured.err)

    run("status", "--storage", plain)  # empty: "no studies in ..."
    assert "no studies in postgresql://" in out[-1]
    run("run", "--storage", plain, "--study", "pw", "--dataset", "digits", "--data-dir", str(tmp_path / "data"),
        "--runs-dir", str(tmp_path / "runs"), "--trials", "2", "--epochs", "1", "--max-params", "60000",
        "--train-images", "256", "--sampler", "random", "--scheduler", "none", "--no-progress", "--json")
    run("status", "--storage", psycopg2, "--json")  # the same study through psycopg2
    assert '"pw"' in out[-1]
    run("status", "--storage", psycopg2, "--study", "pw")
    run("dashboard", "--storage", plain, "--study", "pw", "--out", str(tmp_path / "page.html"))
    run("trials", "--storage", plain, "--study", "pw", "--format", "json")
    run("export", "--storage", plain, "--study", "pw", "--out", str(tmp_path / "best.pt"),
        "--data-dir", str(tmp_path / "data"), "--runs-dir", str(tmp_path / "runs"), "--no-progress")
    assert (tmp_path / "page.html").exists() and (tmp_path / "best.pt").exists()
    assert not [o for o in out if PASSWORD in o], out
    assert _leaks(tmp_path) == []  # the page, the checkpoint, the runs folder (Ray's files included)
