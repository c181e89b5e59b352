import json
from pathlib import Path

from tests.support import base_env, cli


def test_token_issue_prints_the_token_alone_and_list_never_shows_it(tmp_path: Path) -> None:
    env = base_env(tmp_path / "k.db")
    issued = cli(["token", "issue", "--email", "Ops@Example.com", "--tier", "team", "--days", "30"], env)
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()
    assert issued.stdout.count("\n") == 1 and token.count(".") == 2
    assert "only time" in issued.stderr and token not in issued.stderr

    listed = cli(["token", "list", "--json"], env)
    [record] = json.loads(listed.stdout)
    assert record["email"] == "ops@example.com" and record["tier"] == "team" and record["status"] == "active"
    assert token not in listed.stdout

    table = cli(["token", "list", "--email", "ops@example.com"], env)
    assert record["token_id"] in table.stdout and "TOKEN_ID" in table.stdout


def test_revoke_rotate_and_retier_change_the_listed_status(tmp_path: Path) -> None:
    env = base_env(tmp_path / "k.db")
    cli(["token", "issue", "--email", "a@example.com", "--tier", "personal"], env)
    [first] = json.loads(cli(["token", "list", "--json"], env).stdout)

    retiered = cli(["token", "tier", first["token_id"], "enterprise"], env)
    assert retiered.returncode == 0 and "enterprise" in retiered.stderr

    rotated = cli(["token", "rotate", first["token_id"]], env)
    assert rotated.returncode == 0 and rotated.stdout.strip().count(".") == 2
    records = {r["token_id"]: r for r in json.loads(cli(["token", "list", "--json"], env).stdout)}
    assert records[first["token_id"]]["status"] == "rotated"
    [new_id] = [i for i in records if i != first["token_id"]]
    assert records[new_id]["tier"] == "enterprise" and records[new_id]["status"] == "active"

    assert cli(["token", "revoke", new_id], env).returncode == 0
    assert json.loads(cli(["token", "list", "--json"], env).stdout)[1]["status"] == "revoked"


def test_unknown_tokens_and_tiers_are_clear_errors(tmp_path: Path) -> None:
    env = base_env(tmp_path / "k.db")
    missing = cli(["token", "revoke", "tok_nope"], env)
    assert missing.returncode == 1 and "no token tok_nope" in missing.stderr
    bad_tier = cli(["token", "issue", "--email", "a@example.com", "--tier", "gold"], env)
    assert bad_tier.returncode == 2 and "invalid choice" in bad_tier.stderr
    bad_email = cli(["token", "issue", "--email", "nobody", "--tier", "team"], env)
    assert bad_email.returncode == 2 and "argument --email: not a valid email" in bad_email.stderr


def test_token_rotate_keeps_the_expiry_of_the_token_it_replaces(tmp_path: Path) -> None:
    env = base_env(tmp_path / "k.db")
    cli(["token", "issue", "--email", "short@example.com", "--tier", "team", "--days", "1"], env)
    [first] = json.loads(cli(["token", "list", "--json"], env).stdout)

    rotated = cli(["token", "rotate", first["token_id"]], env)

    assert rotated.returncode == 0, rotated.stderr
    assert first["expires"] in rotated.stderr
    records = json.loads(cli(["token", "list", "--json"], env).stdout)
    assert [r["expires"] for r in records] == [first["expires"]] * 2
