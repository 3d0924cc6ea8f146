//! IAM naming and ARN rules.

use rolegate::iam::{
    AccountId, Arn, IamPath, MaxSessionDuration, Partition, RoleArn, RoleName, Tag, Tags,
};

#[test]
fn role_names_follow_iam_rules() {
    for ok in ["Admin", "a", "deploy_bot+ci=1,x.y@z-w", &"R".repeat(64)] {
        assert!(RoleName::parse(ok).is_ok(), "{ok}");
    }
    for bad in [
        "",
        "has space",
        "slash/name",
        "ümlaut",
        &"R".repeat(65),
        "colon:name",
    ] {
        let error = RoleName::parse(bad).unwrap_err();
        assert_eq!(error.field, "RoleName", "{bad}");
    }
    assert!(
        RoleName::parse("x y")
            .unwrap_err()
            .to_string()
            .contains("' '")
    );
}

#[test]
fn account_ids_paths_and_durations() {
    assert!(AccountId::parse("123456789012").is_ok());
    for bad in ["12345678901", "1234567890123", "12345678901a", ""] {
        assert!(AccountId::parse(bad).is_err(), "{bad}");
    }
    for ok in ["/", "/a/", "/team/ci/"] {
        assert!(IamPath::parse(ok).is_ok(), "{ok}");
    }
    for bad in ["", "a/", "/a", "/a b/", "//", "/a//b/"] {
        assert!(IamPath::parse(bad).is_err(), "{bad}");
    }
    assert!(MaxSessionDuration::from_seconds(3599).is_err());
    assert!(MaxSessionDuration::from_seconds(43_201).is_err());
    assert_eq!(
        MaxSessionDuration::from_seconds(43_200).unwrap().seconds(),
        43_200
    );
}

#[test]
fn arns_parse_and_print_with_the_configured_partition() {
    let arn = Arn::parse("arn:aws:s3:::bucket/key:with:colons").unwrap();
    assert_eq!(arn.service, "s3");
    assert_eq!(arn.resource, "bucket/key:with:colons");
    assert_eq!(arn.to_string(), "arn:aws:s3:::bucket/key:with:colons");
    for bad in [
        "arn:aws:s3",
        "aws:s3:::b",
        "arn::s3:::b",
        "arn:aws:S3:::b",
        "arn:aws:s3:::",
    ] {
        assert!(Arn::parse(bad).is_err(), "{bad}");
    }
    let partition = Partition::parse("aws-cn").unwrap();
    let account = AccountId::parse("123456789012").unwrap();
    let path = IamPath::parse("/ops/").unwrap();
    assert_eq!(
        RoleArn::new(
            &partition,
            account.clone(),
            path.clone(),
            RoleName::parse("Deploy").unwrap()
        )
        .to_string(),
        "arn:aws-cn:iam::123456789012:role/ops/Deploy"
    );
    assert_eq!(
        partition
            .policy_arn(None, &IamPath::root(), "ReadOnly")
            .to_string(),
        "arn:aws-cn:iam::aws:policy/ReadOnly"
    );
    assert!(Partition::parse("AWS").is_err());
}

#[test]
fn tags_are_limited_and_case_insensitively_unique() {
    let tag = |k: &str, v: &str| Tag::parse(k, v).unwrap();
    assert!(Tags::new(vec![tag("team", "a"), tag("Team", "b")]).is_err());
    assert!(Tag::parse("aws:reserved", "x").is_err());
    assert!(Tag::parse("", "x").is_err());
    assert!(Tag::parse("k", "v".repeat(257)).is_err());
    let many: Vec<Tag> = (0..51).map(|i| tag(&format!("k{i}"), "v")).collect();
    assert!(Tags::new(many[..50].to_vec()).is_ok());
    assert!(Tags::new(many).is_err());
    // Deserialising goes through the same checks.
    assert!(serde_json::from_str::<Tags>(r#"[{"Key":"aws:x","Value":"y"}]"#).is_err());
}
