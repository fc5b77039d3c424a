"""Secrets Manager and SSM Parameter Store on Berth's endpoint, with boto3 and the AWS CLI:
secret versions and staging labels, lookups by name and ARN, deletion windows and restores,
filters and paging, parameter versions, SecureString decryption, hierarchies and paths,
errors, IAM refusals, and no plaintext value at rest (data dir, log) or in any Describe/List
answer."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from harness import ACCOUNT, REGION, BerthServer, Credentials, berth_bin, boto3_client
from leaks import secret_value
from iam_helpers import allow, aws, cli_error, error_of, make_user


@pytest.fixture(scope="module")
def server(berth):
    return berth.server


@pytest.fixture(scope="module")
def sm(server):
    """Secrets Manager straight to the server (the recording proxy checks ECS/Logs only)."""
    return boto3_client(server.url, server.credentials, service="secretsmanager")


@pytest.fixture(scope="module")
def ssm(server):
    return boto3_client(server.url, server.credentials, service="ssm")


def marker(kind: str) -> str:
    """A value no other test and no key material can contain by chance, watched for leaks
    until the end of the session."""
    return secret_value(kind)


# ---------------------------------------------------------------------------------------------
# Secrets Manager
# ---------------------------------------------------------------------------------------------


def test_secret_versions_move_awscurrent_and_awsprevious(sm, unique) -> None:
    name = unique("app/db")
    created = sm.create_secret(Name=name, SecretString="first", Description="the db", Tags=[{"Key": "env", "Value": "prod"}])
    arn = created["ARN"]
    prefix = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-"
    assert arn.startswith(prefix) and len(arn) == len(prefix) + 6 and arn[-6:].isalnum()
    v1 = created["VersionId"]

    put = sm.put_secret_value(SecretId=name, SecretString="second")
    assert put["VersionStages"] == ["AWSCURRENT"] and put["VersionId"] != v1
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "second"
    previous = sm.get_secret_value(SecretId=arn, VersionStage="AWSPREVIOUS")
    assert (previous["SecretString"], previous["VersionId"]) == ("first", v1)
    assert sm.get_secret_value(SecretId=arn[:-7], VersionId=v1)["SecretString"] == "first"

    token = str(uuid.uuid4())
    third = sm.put_secret_value(SecretId=name, SecretString="third", ClientRequestToken=token)
    assert third["VersionId"] == token
    again = sm.put_secret_value(SecretId=name, SecretString="third", ClientRequestToken=token)
    assert again["VersionId"] == token, "a retry with the same token and value is accepted"
    code, _ = error_of(sm.put_secret_value, SecretId=name, SecretString="other", ClientRequestToken=token)
    assert code == "ResourceExistsException"

    described = sm.describe_secret(SecretId=name)
    assert described["Description"] == "the db"
    assert described["VersionIdsToStages"] == {token: ["AWSCURRENT"], put["VersionId"]: ["AWSPREVIOUS"]}
    assert described["Tags"] == [{"Key": "env", "Value": "prod"}]
    assert described["CreatedDate"] <= described["LastChangedDate"]

    sm.update_secret(SecretId=name, Description="renamed")
    updated = sm.update_secret(SecretId=name, SecretBinary=b"\x00\x01binary")
    assert sm.get_secret_value(SecretId=name)["SecretBinary"] == b"\x00\x01binary"
    assert sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")["SecretString"] == "third"
    assert sm.describe_secret(SecretId=name)["Description"] == "renamed"
    assert updated["VersionId"] in sm.describe_secret(SecretId=name)["VersionIdsToStages"]

    sm.tag_resource(SecretId=name, Tags=[{"Key": "team", "Value": "a"}])
    sm.untag_resource(SecretId=name, TagKeys=["env"])
    assert sm.describe_secret(SecretId=name)["Tags"] == [{"Key": "team", "Value": "a"}]


def test_secret_errors_name_what_to_fix(sm, unique) -> None:
    name = unique("errors")
    sm.create_secret(Name=name, SecretString="v")
    cases = [
        (sm.get_secret_value, {"SecretId": unique("missing")}, "ResourceNotFoundException"),
        (sm.create_secret, {"Name": name, "SecretString": "v2"}, "ResourceExistsException"),
        (sm.create_secret, {"Name": unique("both"), "SecretString": "a", "SecretBinary": b"b"}, "InvalidParameterException"),
        (sm.get_secret_value, {"SecretId": name, "VersionStage": "AWSPREVIOUS"}, "ResourceNotFoundException"),
        (sm.delete_secret, {"SecretId": name, "RecoveryWindowInDays": 31}, "InvalidParameterException"),
        (
            sm.delete_secret,
            {"SecretId": name, "RecoveryWindowInDays": 7, "ForceDeleteWithoutRecovery": True},
            "InvalidParameterException",
        ),
    ]
    for call, kwargs, expected in cases:
        code, status = error_of(call, **kwargs)
        assert (code, status) == (expected, 400), kwargs
    try:
        sm.get_secret_value(SecretId=unique("missing"))
    except ClientError as e:
        assert e.response["Error"]["Message"] == "Secrets Manager can't find the specified secret."


def test_deletion_window_restore_and_forced_deletion(sm, unique) -> None:
    name = unique("doomed")
    sm.create_secret(Name=name, SecretString="v")
    deleted = sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    window = deleted["DeletionDate"].timestamp() - sm.describe_secret(SecretId=name)["DeletedDate"].timestamp()
    assert abs(window - 7 * 86400) < 5
    code, _ = error_of(sm.get_secret_value, SecretId=name)
    assert code == "InvalidRequestException"
    listed = sm.list_secrets(Filters=[{"Key": "name", "Values": [name]}])["SecretList"]
    assert listed == []
    planned = sm.list_secrets(Filters=[{"Key": "name", "Values": [name]}], IncludePlannedDeletion=True)["SecretList"]
    assert [s["Name"] for s in planned] == [name] and "DeletedDate" in planned[0]
    code, _ = error_of(sm.delete_secret, SecretId=name)
    assert code == "InvalidRequestException", "already scheduled"

    sm.restore_secret(SecretId=name)
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "v"

    sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    code, _ = error_of(sm.describe_secret, SecretId=name)
    assert code == "ResourceNotFoundException"
    recreated = sm.create_secret(Name=name, SecretString="new")
    assert sm.get_secret_value(SecretId=recreated["ARN"])["SecretString"] == "new"


def test_list_secrets_filters_sorts_and_pages(sm, unique) -> None:
    base = unique("paged")
    for i in range(5):
        sm.create_secret(Name=f"{base}/s{i}", SecretString="v", Tags=[{"Key": "parity", "Value": "even" if i % 2 == 0 else "odd"}])
    selector = [{"Key": "name", "Values": [f"{base}/"]}]
    seen, token, pages = [], None, 0
    while True:
        kwargs = {"Filters": selector, "MaxResults": 2, **({"NextToken": token} if token else {})}
        page = sm.list_secrets(**kwargs)
        seen += [s["Name"] for s in page["SecretList"]]
        pages += 1
        token = page.get("NextToken")
        if not token:
            break
    assert sorted(seen) == [f"{base}/s{i}" for i in range(5)] and pages == 3
    paginated = [s["Name"] for p in sm.get_paginator("list_secrets").paginate(Filters=selector, PaginationConfig={"PageSize": 2}) for s in p["SecretList"]]
    assert sorted(paginated) == sorted(seen)
    odd = sm.list_secrets(Filters=[*selector, {"Key": "tag-value", "Values": ["odd"]}])["SecretList"]
    assert sorted(s["Name"] for s in odd) == [f"{base}/s1", f"{base}/s3"]
    desc = sm.list_secrets(Filters=selector, SortOrder="desc")["SecretList"]
    dates = [s["CreatedDate"] for s in desc]
    assert dates == sorted(dates, reverse=True)
    assert all("SecretString" not in s for s in desc)
    batch = sm.batch_get_secret_value(SecretIdList=[f"{base}/s0", unique("nope")])
    assert [v["SecretString"] for v in batch["SecretValues"]] == ["v"]
    assert batch["Errors"][0]["ErrorCode"] == "ResourceNotFoundException"


def test_secrets_manager_with_the_aws_cli(server, tmp_path, unique) -> None:
    name = unique("cli/secret")

    def run(*args: str) -> dict:
        done = aws(server, server.credentials, tmp_path, "secretsmanager", *args)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else {}

    created = run("create-secret", "--name", name, "--secret-string", '{"user":"u","password":"p1"}')
    assert created["Name"] == name
    assert json.loads(run("get-secret-value", "--secret-id", name)["SecretString"])["password"] == "p1"
    run("put-secret-value", "--secret-id", created["ARN"], "--secret-string", '{"user":"u","password":"p2"}')
    assert json.loads(run("get-secret-value", "--secret-id", name)["SecretString"])["password"] == "p2"
    previous = run("get-secret-value", "--secret-id", name, "--version-stage", "AWSPREVIOUS")
    assert json.loads(previous["SecretString"])["password"] == "p1"
    listed = run("list-secrets", "--filters", f"Key=name,Values={name}")
    assert [s["Name"] for s in listed["SecretList"]] == [name]
    run("delete-secret", "--secret-id", name, "--force-delete-without-recovery")
    done = aws(server, server.credentials, tmp_path, "secretsmanager", "get-secret-value", "--secret-id", name)
    assert cli_error(done) == "ResourceNotFoundException"


def test_random_passwords_follow_the_requested_classes(sm) -> None:
    password = sm.get_random_password(PasswordLength=40, ExcludePunctuation=True, ExcludeCharacters="abc")["RandomPassword"]
    assert len(password) == 40 and password.isalnum() and not set("abc") & set(password)
    code, _ = error_of(sm.get_random_password, PasswordLength=2)
    assert code == "InvalidParameterException"


# ---------------------------------------------------------------------------------------------
# SSM Parameter Store
# ---------------------------------------------------------------------------------------------


def test_parameter_versions_types_and_decryption(ssm, unique) -> None:
    root = "/" + unique("svc")
    assert ssm.put_parameter(Name=f"{root}/url", Value="http://a", Type="String")["Version"] == 1
    code, _ = error_of(ssm.put_parameter, Name=f"{root}/url", Value="http://b", Type="String")
    assert code == "ParameterAlreadyExists"
    assert ssm.put_parameter(Name=f"{root}/url", Value="http://b", Overwrite=True)["Version"] == 2
    got = ssm.get_parameter(Name=f"{root}/url")["Parameter"]
    assert (got["Value"], got["Version"], got["Type"]) == ("http://b", 2, "String")
    assert got["ARN"] == f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{root}/url"
    assert ssm.get_parameter(Name=f"{root}/url:1")["Parameter"]["Value"] == "http://a"
    code, _ = error_of(ssm.get_parameter, Name=f"{root}/url:5")
    assert code == "ParameterVersionNotFound"
    code, _ = error_of(ssm.get_parameter, Name=f"{root}/missing")
    assert code == "ParameterNotFound"

    ssm.put_parameter(Name=f"{root}/hosts", Value="a,b,c", Type="StringList")
    ssm.put_parameter(Name=f"{root}/password", Value="pw-1", Type="SecureString", Description="db password")
    hidden = ssm.get_parameter(Name=f"{root}/password")["Parameter"]
    assert hidden["Type"] == "SecureString" and "pw-1" not in hidden["Value"] and hidden["Value"]
    assert ssm.get_parameter(Name=f"{root}/password", WithDecryption=True)["Parameter"]["Value"] == "pw-1"

    many = ssm.get_parameters(Names=[f"{root}/hosts", f"{root}/password", f"{root}/nope"], WithDecryption=True)
    assert {p["Name"]: p["Value"] for p in many["Parameters"]} == {f"{root}/hosts": "a,b,c", f"{root}/password": "pw-1"}
    assert many["InvalidParameters"] == [f"{root}/nope"]

    ssm.put_parameter(Name=f"{root}/password", Value="pw-2", Overwrite=True)
    history = ssm.get_parameter_history(Name=f"{root}/password")["Parameters"]
    assert [h["Version"] for h in history] == [1, 2]
    assert all("pw-" not in h["Value"] for h in history)
    decrypted = ssm.get_parameter_history(Name=f"{root}/password", WithDecryption=True)["Parameters"]
    assert [h["Value"] for h in decrypted] == ["pw-1", "pw-2"]
    assert decrypted[1]["Description"] == "db password" and decrypted[1]["Type"] == "SecureString"

    labelled = ssm.label_parameter_version(Name=f"{root}/password", ParameterVersion=1, Labels=["stable"])
    assert labelled["InvalidLabels"] == [] and labelled["ParameterVersion"] == 1
    stable = ssm.get_parameter(Name=f"{root}/password:stable", WithDecryption=True)["Parameter"]
    assert (stable["Value"], stable["Version"], stable["Selector"]) == ("pw-1", 1, ":stable")


def test_allowed_pattern_holds_for_every_version(ssm, unique) -> None:
    name = "/" + unique("port")
    ssm.put_parameter(Name=name, Value="8080", Type="String", AllowedPattern=r"^\d+$")
    with pytest.raises(ClientError) as refused:
        ssm.put_parameter(Name=name, Value="80a", Overwrite=True)
    assert refused.value.response["Error"]["Code"] == "ParameterPatternMismatchException"
    assert ssm.get_parameter(Name=name)["Parameter"]["Value"] == "8080"
    with pytest.raises(ClientError) as invalid:
        ssm.put_parameter(Name="/" + unique("bad"), Value="x", Type="String", AllowedPattern="([")
    assert invalid.value.response["Error"]["Code"] == "InvalidAllowedPatternException"


def test_parameter_paths_describe_and_delete(ssm, unique) -> None:
    root = "/" + unique("tree")
    names = [f"{root}/a", f"{root}/b", f"{root}/c", f"{root}/sub/d", f"{root}/sub/deeper/e"]
    for name in names:
        ssm.put_parameter(Name=name, Value="v", Type="String", Tags=[{"Key": "tree", "Value": root}])
    ssm.put_parameter(Name=f"{root}/sub/secret", Value="hidden-value", Type="SecureString")

    one_level = ssm.get_parameters_by_path(Path=root)["Parameters"]
    assert [p["Name"] for p in one_level] == names[:3]
    pages = list(ssm.get_paginator("get_parameters_by_path").paginate(Path=root, Recursive=True, PaginationConfig={"PageSize": 2}))
    assert len(pages) == 3
    everything = [p for page in pages for p in page["Parameters"]]
    assert sorted(p["Name"] for p in everything) == sorted([*names, f"{root}/sub/secret"])
    assert all("hidden-value" not in p["Value"] for p in everything)
    secure = ssm.get_parameters_by_path(
        Path=f"{root}/sub", Recursive=True, WithDecryption=True, ParameterFilters=[{"Key": "Type", "Values": ["SecureString"]}]
    )["Parameters"]
    assert [(p["Name"], p["Value"]) for p in secure] == [(f"{root}/sub/secret", "hidden-value")]
    code, _ = error_of(ssm.get_parameters_by_path, Path=root, MaxResults=11)
    assert code == "ValidationException"

    described = ssm.describe_parameters(ParameterFilters=[{"Key": "Path", "Option": "Recursive", "Values": [root]}])["Parameters"]
    assert len(described) == 6 and all("Value" not in p for p in described)
    begins = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Option": "BeginsWith", "Values": [f"{root}/sub/"]}])
    assert sorted(p["Name"] for p in begins["Parameters"]) == sorted([names[3], names[4], f"{root}/sub/secret"])
    tagged = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=names[0])["TagList"]
    assert tagged == [{"Key": "tree", "Value": root}]

    ssm.delete_parameter(Name=names[0])
    code, _ = error_of(ssm.delete_parameter, Name=names[0])
    assert code == "ParameterNotFound"
    gone = ssm.delete_parameters(Names=[names[1], f"{root}/never"])
    assert (gone["DeletedParameters"], gone["InvalidParameters"]) == ([names[1]], [f"{root}/never"])


def test_parameter_names_follow_the_hierarchy_rules(ssm, unique) -> None:
    too_deep = "/" + "/".join([unique("l")] * 16)
    code, _ = error_of(ssm.put_parameter, Name=too_deep, Value="v", Type="String")
    assert code == "HierarchyLevelLimitExceededException"
    for bad in ["no/leading/slash", "/aws/reserved", "/trailing/", "/double//slash"]:
        code, _ = error_of(ssm.put_parameter, Name=bad, Value="v", Type="String")
        assert code == "ValidationException", bad
    code, _ = error_of(ssm.put_parameter, Name="/" + unique("typeless"), Value="v")
    assert code == "ValidationException"
    code, _ = error_of(ssm.put_parameter, Name="/" + unique("tagged"), Value="v", Type="String", Overwrite=True, Tags=[{"Key": "k", "Value": "v"}])
    assert code == "ValidationException"


def test_parameter_store_with_the_aws_cli(server, tmp_path, unique) -> None:
    root = "/" + unique("cli")

    def run(*args: str) -> dict:
        done = aws(server, server.credentials, tmp_path, "ssm", *args)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else {}

    run("put-parameter", "--name", f"{root}/db/user", "--value", "admin", "--type", "String")
    run("put-parameter", "--name", f"{root}/db/password", "--value", "cli-pw", "--type", "SecureString")
    assert run("get-parameter", "--name", f"{root}/db/password", "--with-decryption")["Parameter"]["Value"] == "cli-pw"
    assert "cli-pw" not in run("get-parameter", "--name", f"{root}/db/password")["Parameter"]["Value"]
    by_path = run("get-parameters-by-path", "--path", root, "--recursive", "--with-decryption")
    assert {p["Name"]: p["Value"] for p in by_path["Parameters"]} == {f"{root}/db/user": "admin", f"{root}/db/password": "cli-pw"}
    done = aws(server, server.credentials, tmp_path, "ssm", "put-parameter", "--name", f"{root}/db/user", "--value", "x", "--type", "String")
    assert cli_error(done) == "ParameterAlreadyExists"


# ---------------------------------------------------------------------------------------------
# Authorisation and leaks
# ---------------------------------------------------------------------------------------------


def test_a_user_without_permissions_is_refused(server, sm, ssm, unique) -> None:
    allowed_name = unique("readable")
    other_name = unique("unreadable")
    sm.create_secret(Name=allowed_name, SecretString="ok")
    sm.create_secret(Name=other_name, SecretString="no")
    ssm.put_parameter(Name="/" + unique("param"), Value="v", Type="String")

    nobody = make_user(server, unique("nobody"))
    sm_nobody = boto3_client(server.url, nobody, service="secretsmanager")
    ssm_nobody = boto3_client(server.url, nobody, service="ssm")
    for call, kwargs in [
        (sm_nobody.get_secret_value, {"SecretId": allowed_name}),
        (sm_nobody.create_secret, {"Name": unique("new"), "SecretString": "x"}),
        (sm_nobody.list_secrets, {}),
        (ssm_nobody.get_parameter, {"Name": "/" + unique("param")}),
        (ssm_nobody.put_parameter, {"Name": "/" + unique("p"), "Value": "v", "Type": "String"}),
    ]:
        code, _ = error_of(call, **kwargs)
        assert code == "AccessDeniedException", call

    arn = sm.describe_secret(SecretId=allowed_name)["ARN"]
    reader = make_user(server, unique("reader"), allow("secretsmanager:GetSecretValue", f"{arn[:-7]}-??????"))
    sm_reader = boto3_client(server.url, reader, service="secretsmanager")
    assert sm_reader.get_secret_value(SecretId=allowed_name)["SecretString"] == "ok"
    code, _ = error_of(sm_reader.get_secret_value, SecretId=other_name)
    assert code == "AccessDeniedException"
    code, _ = error_of(sm_reader.put_secret_value, SecretId=allowed_name, SecretString="changed")
    assert code == "AccessDeniedException"


def test_no_plaintext_value_at_rest_or_in_describe_and_list_answers(server, sm, ssm, unique) -> None:
    secret_marker, binary_marker, secure_marker, previous_marker = (marker(k) for k in ("Secret", "Binary", "Secure", "Previous"))
    name = unique("leak/secret")
    sm.create_secret(Name=name, SecretString=previous_marker)
    sm.put_secret_value(SecretId=name, SecretString=secret_marker)
    sm.create_secret(Name=unique("leak/binary"), SecretBinary=binary_marker.encode())
    parameter = "/" + unique("leak") + "/secure"
    ssm.put_parameter(Name=parameter, Value=secure_marker, Type="SecureString")
    # Values do come back to whoever asks for them...
    assert sm.get_secret_value(SecretId=name)["SecretString"] == secret_marker
    assert ssm.get_parameter(Name=parameter, WithDecryption=True)["Parameter"]["Value"] == secure_marker
    markers = [secret_marker, binary_marker, secure_marker, previous_marker]

    # ...but no metadata answer carries them.
    answers = [
        sm.describe_secret(SecretId=name),
        sm.list_secrets(IncludePlannedDeletion=True),
        sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True),
        ssm.describe_parameters(),
        ssm.get_parameter(Name=parameter),
        ssm.get_parameter_history(Name=parameter),
        ssm.get_parameters_by_path(Path=parameter.rsplit("/", 1)[0]),
    ]
    for answer in answers:
        text = json.dumps(answer, default=str)
        assert not any(m in text for m in markers), text

    # Nothing in the data dir (database, WAL, shared memory, keys, everything) nor the log.
    files = [p for p in Path(server.data_dir).rglob("*") if p.is_file()] + [Path(server.log_path)]
    assert any(p.name.startswith("berth.db") for p in files)
    for path in files:
        content = path.read_bytes()
        for m in markers:
            assert m.encode() not in content, f"{m} in plain text in {path}"
    key_file = Path(server.data_dir) / "vault.key"
    assert key_file.stat().st_mode & 0o777 == 0o600 and key_file.stat().st_size == 32


# ---------------------------------------------------------------------------------------------
# Master key rotation
# ---------------------------------------------------------------------------------------------


def rotate_vault_key(server: BerthServer, credentials: Credentials) -> subprocess.CompletedProcess:
    env = {**credentials.env(), "AWS_ENDPOINT_URL": server.url, "AWS_DEFAULT_REGION": REGION}
    return subprocess.run([str(berth_bin()), "rotate-vault-key"], env=env, capture_output=True, text=True, timeout=60)


def test_rotating_the_master_key_keeps_every_value_and_forgets_the_old_key(tmp_path, unique) -> None:
    server = BerthServer(tmp_path / "data").start()
    try:
        sm_root = boto3_client(server.url, server.credentials, service="secretsmanager")
        ssm_root = boto3_client(server.url, server.credentials, service="ssm")
        secret_marker, previous_marker, secure_marker = marker("Rotated"), marker("Older"), marker("SecureRotated")
        name = unique("rotated")
        sm_root.create_secret(Name=name, SecretString=previous_marker)
        sm_root.put_secret_value(SecretId=name, SecretString=secret_marker)
        parameter = "/" + unique("rotated") + "/secure"
        ssm_root.put_parameter(Name=parameter, Value=secure_marker, Type="SecureString")
        key_file = server.data_dir / "vault.key"
        old_key = key_file.read_bytes()

        # Anyone but the account's root user is refused, and nothing changes.
        admin = make_user(server, unique("admin"), allow("*")).write(tmp_path / "admin-credentials")
        refused = rotate_vault_key(server, admin)
        assert refused.returncode != 0 and "AccessDeniedException" in refused.stderr, refused
        assert key_file.read_bytes() == old_key

        done = rotate_vault_key(server, server.credentials)
        assert done.returncode == 0, done
        assert "2 secret and parameter records re-wrapped" in done.stdout, done.stdout
        new_key = key_file.read_bytes()
        assert len(new_key) == 32 and new_key != old_key, "the old key is forgotten"
        assert key_file.stat().st_mode & 0o777 == 0o600

        # Every version still opens, now and after a restart under the new key alone.
        for _ in range(2):
            assert sm_root.get_secret_value(SecretId=name)["SecretString"] == secret_marker
            assert sm_root.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")["SecretString"] == previous_marker
            assert ssm_root.get_parameter(Name=parameter, WithDecryption=True)["Parameter"]["Value"] == secure_marker
            server.stop()
            server.start()
            sm_root = boto3_client(server.url, server.credentials, service="secretsmanager")
            ssm_root = boto3_client(server.url, server.credentials, service="ssm")
        # Values written after the rotation are sealed under the new key.
        sm_root.put_secret_value(SecretId=name, SecretString="after")
        assert sm_root.get_secret_value(SecretId=name)["SecretString"] == "after"
        assert "0 secret and parameter records re-wrapped" not in rotate_vault_key(server, server.credentials).stdout
    finally:
        server.stop()
