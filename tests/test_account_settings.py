"""Account settings through boto3: PutAccountSetting, PutAccountSettingDefault,
ListAccountSettings and DeleteAccountSetting, with ECS's names, values and error codes."""

import pytest

from harness import ACCOUNT
from helpers import expect_error

ROOT = f"arn:aws:iam::{ACCOUNT}:root"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
BOB = f"arn:aws:iam::{ACCOUNT}:role/bob"


def settings_named(ecs, name, **kwargs) -> list:
    out, token = [], None
    for _ in range(100):
        page = ecs.list_account_settings(name=name, **kwargs, **({"nextToken": token} if token else {}))
        out.extend(page["settings"])
        token = page.get("nextToken")
        if not token:
            return out
    raise AssertionError("ListAccountSettings did not stop paging")


def test_put_account_setting_for_the_caller_is_listed(ecs):
    setting = ecs.put_account_setting(name="containerInsights", value="enabled")["setting"]
    assert setting["name"] == "containerInsights"
    assert setting["value"] == "enabled"
    assert setting["principalArn"].startswith(f"arn:aws:iam::{ACCOUNT}:")
    listed = settings_named(ecs, "containerInsights")
    assert {(s["name"], s["value"], s["principalArn"]) for s in listed} == {
        ("containerInsights", "enabled", setting["principalArn"])
    }


def test_put_account_setting_for_another_principal(ecs):
    setting = ecs.put_account_setting(name="awsvpcTrunking", value="enabled", principalArn=ALICE)["setting"]
    assert (setting["name"], setting["value"], setting["principalArn"]) == ("awsvpcTrunking", "enabled", ALICE)
    listed = settings_named(ecs, "awsvpcTrunking", principalArn=ALICE)
    assert [(s["value"], s["principalArn"]) for s in listed] == [("enabled", ALICE)]


def test_put_account_setting_default_applies_to_the_account(ecs):
    setting = ecs.put_account_setting_default(name="tagResourceAuthorization", value="on")["setting"]
    assert (setting["name"], setting["value"]) == ("tagResourceAuthorization", "on")
    assert setting["principalArn"] == ROOT


def test_effective_settings_fall_back_to_the_account_default_and_prefer_the_principal(ecs):
    ecs.put_account_setting_default(name="awsvpcTrunking", value="enabled")
    effective = settings_named(ecs, "awsvpcTrunking", principalArn=BOB, effectiveSettings=True)
    assert [s["value"] for s in effective] == ["enabled"]
    ecs.put_account_setting(name="awsvpcTrunking", value="disabled", principalArn=BOB)
    effective = settings_named(ecs, "awsvpcTrunking", principalArn=BOB, effectiveSettings=True)
    assert [(s["value"], s["principalArn"]) for s in effective] == [("disabled", BOB)]


def test_the_fargate_retirement_wait_period_is_an_account_default(ecs):
    setting = ecs.put_account_setting_default(name="fargateTaskRetirementWaitPeriod", value="14")["setting"]
    assert (setting["value"], setting["principalArn"]) == ("14", ROOT)
    effective = settings_named(ecs, "fargateTaskRetirementWaitPeriod", effectiveSettings=True)
    assert [s["value"] for s in effective] == ["14"]


def test_effective_settings_list_every_setting_with_a_value(ecs):
    names = set()
    token = None
    for _ in range(50):
        page = ecs.list_account_settings(effectiveSettings=True, maxResults=3, **({"nextToken": token} if token else {}))
        assert len(page["settings"]) <= 3
        for s in page["settings"]:
            assert s["name"] not in names, f"{s['name']} listed twice across pages"
            assert s.get("value"), s
            names.add(s["name"])
        token = page.get("nextToken")
        if not token:
            break
    assert {"containerInsights", "awsvpcTrunking", "serviceLongArnFormat", "taskLongArnFormat"} <= names


def test_delete_account_setting_removes_the_principal_setting(ecs):
    ecs.put_account_setting(name="containerInsights", value="enhanced", principalArn=ALICE)
    deleted = ecs.delete_account_setting(name="containerInsights", principalArn=ALICE)["setting"]
    assert (deleted["name"], deleted["principalArn"]) == ("containerInsights", ALICE)
    remaining = [s for s in settings_named(ecs, "containerInsights", principalArn=ALICE) if s["principalArn"] == ALICE]
    assert remaining == []


@pytest.mark.parametrize(
    "name, value",
    [
        ("noSuchSetting", "enabled"),
        ("containerInsights", "sometimes"),
        ("awsvpcTrunking", "maybe"),
        ("fargateTaskRetirementWaitPeriod", "3"),
        ("tagResourceAuthorization", ""),
    ],
)
def test_unknown_names_and_values_are_invalid(ecs, name, value):
    expect_error("InvalidParameterException", ecs.put_account_setting, name=name, value=value)
    expect_error("InvalidParameterException", ecs.put_account_setting_default, name=name, value=value)


def test_delete_and_list_reject_unknown_setting_names(ecs):
    expect_error("InvalidParameterException", ecs.delete_account_setting, name="noSuchSetting")
    expect_error("InvalidParameterException", ecs.list_account_settings, name="noSuchSetting")


def test_list_account_settings_rejects_bad_max_results(ecs):
    expect_error("InvalidParameterException", ecs.list_account_settings, maxResults=0)
    expect_error("InvalidParameterException", ecs.list_account_settings, maxResults=11)
