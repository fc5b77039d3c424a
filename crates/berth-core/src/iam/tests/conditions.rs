//! Conditions: their structure and every operator, Null, IfExists and the set qualifiers.

use super::*;

// ---------------------------------------------------------------- condition structure

#[test]
fn values_of_one_key_are_alternatives() {
    let c = r#"{"StringEquals": {"aws:RequestedRegion": ["us-east-1", "eu-west-1"]}}"#;
    assert!(holds(c, &ctx(&[("aws:RequestedRegion", "eu-west-1")])));
    assert!(!holds(c, &ctx(&[("aws:RequestedRegion", "ap-south-1")])));
}

#[test]
fn keys_of_one_operator_must_all_match() {
    let c = r#"{"StringEquals": {"ecs:cluster": "dev", "aws:RequestedRegion": "us-east-1"}}"#;
    let both = ctx(&[("ecs:cluster", "dev"), ("aws:RequestedRegion", "us-east-1")]);
    let one = ctx(&[("ecs:cluster", "dev"), ("aws:RequestedRegion", "eu-west-1")]);
    assert!(holds(c, &both));
    assert!(!holds(c, &one));
}

#[test]
fn operators_of_one_statement_must_all_match() {
    let c = r#"{"StringEquals": {"ecs:cluster": "dev"}, "Bool": {"aws:SecureTransport": "true"}}"#;
    assert!(holds(
        c,
        &ctx(&[("ecs:cluster", "dev"), ("aws:SecureTransport", "true")])
    ));
    assert!(!holds(
        c,
        &ctx(&[("ecs:cluster", "dev"), ("aws:SecureTransport", "false")])
    ));
}

#[test]
fn condition_keys_ignore_case_but_values_do_not() {
    let c = r#"{"StringEquals": {"AWS:UserName": "alice"}}"#;
    assert!(holds(c, &ctx(&[("aws:username", "alice")])));
    assert!(!holds(c, &ctx(&[("aws:username", "Alice")])));
}

#[test]
fn context_keys_are_stored_case_insensitively_and_may_repeat() {
    let mut c = Context::new();
    c.insert("aws:TagKeys", "env");
    c.insert("AWS:TAGKEYS", "team");
    assert_eq!(
        c.get("aws:tagkeys"),
        Some(&["env".to_string(), "team".to_string()][..])
    );
    assert_eq!(c.get("aws:username"), None);
}

#[test]
fn condition_values_may_be_numbers_and_booleans() {
    assert!(holds(
        r#"{"Bool": {"aws:SecureTransport": true}}"#,
        &ctx(&[("aws:SecureTransport", "true")])
    ));
    assert!(holds(
        r#"{"NumericLessThan": {"ecs:count": [3, 10]}}"#,
        &ctx(&[("ecs:count", "5")])
    ));
}

#[test]
fn positive_operators_do_not_match_an_absent_key() {
    for c in [
        r#"{"StringEquals": {"ecs:cluster": "dev"}}"#,
        r#"{"StringLike": {"ecs:cluster": "*"}}"#,
        r#"{"NumericGreaterThan": {"ecs:count": "0"}}"#,
        r#"{"ArnLike": {"aws:SourceArn": "*"}}"#,
        r#"{"Bool": {"aws:SecureTransport": "false"}}"#,
        r#"{"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}"#,
        r#"{"DateLessThan": {"aws:CurrentTime": "2100-01-01T00:00:00Z"}}"#,
    ] {
        assert!(!holds(c, &Context::new()), "{c}");
    }
}

#[test]
fn negated_operators_match_an_absent_key() {
    for c in [
        r#"{"StringNotEquals": {"ecs:cluster": "dev"}}"#,
        r#"{"StringNotEqualsIgnoreCase": {"ecs:cluster": "dev"}}"#,
        r#"{"StringNotLike": {"ecs:cluster": "d*"}}"#,
        r#"{"NumericNotEquals": {"ecs:count": "1"}}"#,
        r#"{"DateNotEquals": {"aws:CurrentTime": "2024-01-01"}}"#,
        r#"{"ArnNotEquals": {"aws:SourceArn": "arn:aws:ecs:us-east-1:0:cluster/dev"}}"#,
        r#"{"ArnNotLike": {"aws:SourceArn": "arn:aws:ecs:*"}}"#,
        r#"{"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}"#,
    ] {
        assert!(holds(c, &Context::new()), "{c}");
    }
}

// ---------------------------------------------------------------- string operators

#[test]
fn string_equals_is_exact_and_case_sensitive() {
    let c = r#"{"StringEquals": {"ecs:cluster": "dev"}}"#;
    assert!(holds(c, &ctx(&[("ecs:cluster", "dev")])));
    assert!(!holds(c, &ctx(&[("ecs:cluster", "Dev")])));
    assert!(!holds(c, &ctx(&[("ecs:cluster", "dev2")])));
}

#[test]
fn string_equals_takes_wildcards_literally() {
    let c = r#"{"StringEquals": {"ecs:cluster": "d*"}}"#;
    assert!(holds(c, &ctx(&[("ecs:cluster", "d*")])));
    assert!(!holds(c, &ctx(&[("ecs:cluster", "dev")])));
}

#[test]
fn string_not_equals_matches_any_other_value() {
    let c = r#"{"StringNotEquals": {"ecs:cluster": ["dev", "test"]}}"#;
    assert!(holds(c, &ctx(&[("ecs:cluster", "prod")])));
    assert!(!holds(c, &ctx(&[("ecs:cluster", "test")])));
}

#[test]
fn string_equals_ignore_case_folds_case() {
    let c = r#"{"StringEqualsIgnoreCase": {"ecs:cluster": "DEV"}}"#;
    assert!(holds(c, &ctx(&[("ecs:cluster", "dev")])));
    assert!(!holds(c, &ctx(&[("ecs:cluster", "prod")])));
}

#[test]
fn string_not_equals_ignore_case_folds_case() {
    let c = r#"{"StringNotEqualsIgnoreCase": {"ecs:cluster": "DEV"}}"#;
    assert!(!holds(c, &ctx(&[("ecs:cluster", "dev")])));
    assert!(holds(c, &ctx(&[("ecs:cluster", "prod")])));
}

#[test]
fn string_like_takes_star_and_question_mark_as_wildcards() {
    let c = r#"{"StringLike": {"ecs:cluster": ["dev-*", "qa?"]}}"#;
    assert!(holds(c, &ctx(&[("ecs:cluster", "dev-eu")])));
    assert!(holds(c, &ctx(&[("ecs:cluster", "qa1")])));
    assert!(!holds(c, &ctx(&[("ecs:cluster", "qa12")])));
    assert!(!holds(c, &ctx(&[("ecs:cluster", "Dev-eu")])));
}

#[test]
fn string_not_like_matches_values_outside_every_pattern() {
    let c = r#"{"StringNotLike": {"ecs:cluster": ["dev-*", "qa?"]}}"#;
    assert!(holds(c, &ctx(&[("ecs:cluster", "prod")])));
    assert!(!holds(c, &ctx(&[("ecs:cluster", "dev-eu")])));
}

// ---------------------------------------------------------------- numeric, date, bool, binary, ip

#[test]
fn numeric_operators_compare_numbers() {
    let five = ctx(&[("ecs:count", "5")]);
    let cases = [
        ("NumericEquals", "5", true),
        ("NumericEquals", "5.0", true),
        ("NumericEquals", "6", false),
        ("NumericNotEquals", "6", true),
        ("NumericNotEquals", "5", false),
        ("NumericLessThan", "6", true),
        ("NumericLessThan", "5", false),
        ("NumericLessThanEquals", "5", true),
        ("NumericLessThanEquals", "4", false),
        ("NumericGreaterThan", "4", true),
        ("NumericGreaterThan", "5", false),
        ("NumericGreaterThanEquals", "5", true),
        ("NumericGreaterThanEquals", "6", false),
    ];
    for (operator, value, expected) in cases {
        let c = format!(r#"{{"{operator}": {{"ecs:count": "{value}"}}}}"#);
        assert_eq!(holds(&c, &five), expected, "5 {operator} {value}");
    }
}

#[test]
fn numeric_operators_never_match_a_non_number() {
    let c = ctx(&[("ecs:count", "five")]);
    assert!(!holds(r#"{"NumericEquals": {"ecs:count": "5"}}"#, &c));
    assert!(!holds(r#"{"NumericNotEquals": {"ecs:count": "5"}}"#, &c));
    assert!(!holds(
        r#"{"NumericLessThan": {"ecs:count": "NaN"}}"#,
        &ctx(&[("ecs:count", "1")])
    ));
}

#[test]
fn date_operators_compare_instants_in_iso_8601_and_epoch_seconds() {
    let now = ctx(&[("aws:CurrentTime", "2024-06-01T12:00:00Z")]);
    let cases = [
        ("DateEquals", "2024-06-01T14:00:00+02:00", true),
        ("DateEquals", "1717243200", true),
        ("DateNotEquals", "2024-06-01T12:00:01Z", true),
        ("DateNotEquals", "2024-06-01T12:00:00Z", false),
        ("DateLessThan", "2025-01-01", true),
        ("DateLessThan", "2024-06-01", false),
        ("DateLessThanEquals", "2024-06-01T12:00:00Z", true),
        ("DateGreaterThan", "2024-06-01", true),
        ("DateGreaterThan", "2024-06-01T12:00:00.001Z", false),
        ("DateGreaterThanEquals", "20240601T120000Z", true),
        ("DateGreaterThanEquals", "2024-06-02", false),
    ];
    for (operator, value, expected) in cases {
        let c = format!(r#"{{"{operator}": {{"aws:CurrentTime": "{value}"}}}}"#);
        assert_eq!(holds(&c, &now), expected, "now {operator} {value}");
    }
}

#[test]
fn date_operators_never_match_a_non_date() {
    let c = ctx(&[("aws:CurrentTime", "2024-02-30T00:00:00Z")]);
    assert!(!holds(
        r#"{"DateLessThan": {"aws:CurrentTime": "2100-01-01"}}"#,
        &c
    ));
    assert!(!holds(
        r#"{"DateNotEquals": {"aws:CurrentTime": "2100-01-01"}}"#,
        &c
    ));
}

#[test]
fn bool_compares_true_and_false() {
    let c = r#"{"Bool": {"aws:SecureTransport": "false"}}"#;
    assert!(holds(c, &ctx(&[("aws:SecureTransport", "false")])));
    assert!(!holds(c, &ctx(&[("aws:SecureTransport", "true")])));
    assert!(holds(
        r#"{"Bool": {"aws:MultiFactorAuthPresent": "true"}}"#,
        &ctx(&[("aws:MultiFactorAuthPresent", "TRUE")])
    ));
}

#[test]
fn binary_equals_compares_the_base64_text() {
    let c = r#"{"BinaryEquals": {"ecs:blob": "QmluYXJ5VmFsdWU="}}"#;
    assert!(holds(c, &ctx(&[("ecs:blob", "QmluYXJ5VmFsdWU=")])));
    assert!(!holds(c, &ctx(&[("ecs:blob", "QmluYXJ5VmFsdWF=")])));
}

#[test]
fn ip_address_matches_addresses_inside_the_cidr() {
    let c =
        r#"{"IpAddress": {"aws:SourceIp": ["203.0.113.0/24", "2001:db8::/32", "198.51.100.7"]}}"#;
    assert!(holds(c, &ctx(&[("aws:SourceIp", "203.0.113.77")])));
    assert!(holds(c, &ctx(&[("aws:SourceIp", "198.51.100.7")])));
    assert!(holds(c, &ctx(&[("aws:SourceIp", "2001:db8:1::5")])));
    assert!(!holds(c, &ctx(&[("aws:SourceIp", "203.0.114.1")])));
    assert!(!holds(c, &ctx(&[("aws:SourceIp", "2001:db9::1")])));
}

#[test]
fn not_ip_address_matches_addresses_outside_the_cidr() {
    let c = r#"{"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}"#;
    assert!(holds(c, &ctx(&[("aws:SourceIp", "192.168.1.1")])));
    assert!(!holds(c, &ctx(&[("aws:SourceIp", "10.1.2.3")])));
    assert!(!holds(c, &ctx(&[("aws:SourceIp", "not-an-ip")])));
}

// ---------------------------------------------------------------- ARN operators

#[test]
fn arn_equals_and_arn_like_match_exact_arns_and_wildcards() {
    let source = ctx(&[("aws:SourceArn", CLUSTER_DEV)]);
    for operator in ["ArnEquals", "ArnLike"] {
        for (pattern, expected) in [
            (CLUSTER_DEV, true),
            ("arn:aws:ecs:*:000000000000:cluster/*", true),
            ("arn:aws:ecs:us-east-?:000000000000:cluster/dev", true),
            ("arn:aws:ecs:us-east-1:000000000000:cluster/prod", false),
            ("arn:aws:ecs:us-east-1:111111111111:cluster/*", false),
        ] {
            let c = format!(r#"{{"{operator}": {{"aws:SourceArn": "{pattern}"}}}}"#);
            assert_eq!(holds(&c, &source), expected, "{operator} {pattern}");
        }
    }
}

#[test]
fn arn_like_wildcards_stay_within_their_colon_separated_part() {
    let source = ctx(&[("aws:SourceArn", CLUSTER_DEV)]);
    // `us-*` in the region part may not swallow the account as well.
    let c = r#"{"ArnLike": {"aws:SourceArn": "arn:aws:ecs:us-*:cluster/dev"}}"#;
    assert!(!holds(c, &source));
    let parts = r#"{"ArnLike": {"aws:SourceArn": "arn:aws:ecs:us-*:*:cluster/dev"}}"#;
    assert!(holds(parts, &source));
    // The last part of the pattern takes the rest of the ARN.
    let any_ecs = r#"{"ArnLike": {"aws:SourceArn": "arn:aws:ecs:*"}}"#;
    assert!(holds(any_ecs, &source));
    assert!(!holds(
        any_ecs,
        &ctx(&[("aws:SourceArn", "arn:aws:s3:::bucket")])
    ));
}

#[test]
fn arn_not_like_and_arn_not_equals_match_other_arns() {
    let source = ctx(&[("aws:SourceArn", CLUSTER_DEV)]);
    for operator in ["ArnNotEquals", "ArnNotLike"] {
        let hit =
            format!(r#"{{"{operator}": {{"aws:SourceArn": "arn:aws:ecs:*:*:cluster/dev"}}}}"#);
        let miss =
            format!(r#"{{"{operator}": {{"aws:SourceArn": "arn:aws:ecs:*:*:cluster/prod"}}}}"#);
        assert!(!holds(&hit, &source), "{operator}");
        assert!(holds(&miss, &source), "{operator}");
    }
}

// ---------------------------------------------------------------- Null and IfExists

#[test]
fn null_true_matches_an_absent_key_and_false_a_present_one() {
    let absent = r#"{"Null": {"aws:TokenIssueTime": "true"}}"#;
    let present = r#"{"Null": {"aws:TokenIssueTime": "false"}}"#;
    let with_key = ctx(&[("aws:TokenIssueTime", "2024-06-01T00:00:00Z")]);
    assert!(holds(absent, &Context::new()));
    assert!(!holds(absent, &with_key));
    assert!(holds(present, &with_key));
    assert!(!holds(present, &Context::new()));
}

#[test]
fn if_exists_holds_when_the_key_is_absent() {
    for c in [
        r#"{"StringEqualsIfExists": {"ecs:cluster": "dev"}}"#,
        r#"{"NumericLessThanIfExists": {"ecs:count": "3"}}"#,
        r#"{"ArnLikeIfExists": {"aws:SourceArn": "arn:aws:ecs:*:*:cluster/dev"}}"#,
        r#"{"BoolIfExists": {"aws:MultiFactorAuthPresent": "true"}}"#,
    ] {
        assert!(holds(c, &Context::new()), "{c}");
    }
}

#[test]
fn if_exists_tests_the_key_when_it_is_present() {
    let c = r#"{"StringEqualsIfExists": {"ecs:cluster": "dev"}}"#;
    assert!(holds(c, &ctx(&[("ecs:cluster", "dev")])));
    assert!(!holds(c, &ctx(&[("ecs:cluster", "prod")])));
    let n = r#"{"NumericLessThanIfExists": {"ecs:count": "3"}}"#;
    assert!(!holds(n, &ctx(&[("ecs:count", "4")])));
}

// ---------------------------------------------------------------- set qualifiers

pub(super) fn tag_keys(keys: &[&str]) -> Context {
    let mut c = Context::new();
    for key in keys {
        c.insert("aws:TagKeys", *key);
    }
    c
}

#[test]
fn for_all_values_requires_every_request_value_to_be_listed() {
    let c = r#"{"ForAllValues:StringEquals": {"aws:TagKeys": ["env", "team"]}}"#;
    assert!(holds(c, &tag_keys(&["env"])));
    assert!(holds(c, &tag_keys(&["env", "team"])));
    assert!(!holds(c, &tag_keys(&["env", "owner"])));
}

#[test]
fn for_all_values_holds_when_the_key_is_absent() {
    let c = r#"{"ForAllValues:StringEquals": {"aws:TagKeys": ["env", "team"]}}"#;
    assert!(holds(c, &Context::new()));
}

#[test]
fn for_any_value_requires_one_request_value_to_be_listed() {
    let c = r#"{"ForAnyValue:StringEquals": {"aws:TagKeys": ["env", "team"]}}"#;
    assert!(holds(c, &tag_keys(&["owner", "team"])));
    assert!(!holds(c, &tag_keys(&["owner", "cost"])));
}

#[test]
fn for_any_value_fails_when_the_key_is_absent() {
    let c = r#"{"ForAnyValue:StringEquals": {"aws:TagKeys": ["env", "team"]}}"#;
    assert!(!holds(c, &Context::new()));
}

#[test]
fn set_qualifiers_combine_with_other_operators() {
    let like = r#"{"ForAllValues:StringLike": {"aws:TagKeys": "team-*"}}"#;
    assert!(holds(like, &tag_keys(&["team-a", "team-b"])));
    assert!(!holds(like, &tag_keys(&["team-a", "env"])));
    let not_any = r#"{"ForAnyValue:StringNotEquals": {"aws:TagKeys": "env"}}"#;
    assert!(holds(not_any, &tag_keys(&["env", "team"])));
    assert!(!holds(not_any, &tag_keys(&["env"])));
    assert!(!holds(not_any, &Context::new()));
    let not_all = r#"{"ForAllValues:StringNotEquals": {"aws:TagKeys": "env"}}"#;
    assert!(holds(not_all, &tag_keys(&["team", "owner"])));
    assert!(!holds(not_all, &tag_keys(&["env", "team"])));
    let any_if_exists = r#"{"ForAnyValue:StringEqualsIfExists": {"aws:TagKeys": "env"}}"#;
    assert!(holds(any_if_exists, &Context::new()));
}

#[test]
fn unqualified_operators_on_a_multi_valued_key() {
    // Positive: some value matches. Negated: no value matches.
    let keys = tag_keys(&["env", "team"]);
    assert!(holds(r#"{"StringEquals": {"aws:TagKeys": "team"}}"#, &keys));
    assert!(!holds(
        r#"{"StringNotEquals": {"aws:TagKeys": "team"}}"#,
        &keys
    ));
    assert!(holds(
        r#"{"StringNotEquals": {"aws:TagKeys": "owner"}}"#,
        &keys
    ));
}

#[test]
fn operator_names_ignore_case() {
    let c = r#"{"forallvalues:stringequals": {"aws:TagKeys": "env"}}"#;
    assert!(holds(c, &tag_keys(&["env"])));
    assert!(!holds(c, &tag_keys(&["team"])));
}
