//! `POST /v1/authorize`: a service asks whether a SigV4-signed request it received may
//! perform an action; the service itself authenticates with SigV4 (`rolegate`).

use std::time::SystemTime;

use rolegate::iam::{AccountId, IamPath, PolicyName, RoleName, Tags, UserName};
use rolegate::seed;
use rolegate::store::NewIamUser;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Keys, TestStore, app_state, host_of, sigv4_headers, spawn_state};

struct Fixture {
    _db: TestStore,
    base: String,
    service_keys: (String, String),
    /// A service allowed to ask about any resource.
    broker_keys: (String, String),
    /// demo-app's role session (DemoWorkload: ViewOnlyAccess).
    session: (String, String, String),
    store: std::sync::Arc<dyn rolegate::store::Store>,
}

async fn fixture(db: TestStore) -> Fixture {
    let state = app_state(db.store.clone()).await;
    let mut report = seed::seed_demo(state.store.as_ref()).await.unwrap();
    seed::seed_workload(state.store.as_ref(), &state.sts, &mut report, None)
        .await
        .unwrap();
    let account = AccountId::parse(seed::DEMO_ACCOUNT_ID).unwrap();
    // A storage service that may ask about S3 resources only.
    state
        .store
        .create_iam_user(&NewIamUser {
            account_id: account.clone(),
            path: IamPath::root(),
            name: UserName::parse("storage-svc").unwrap(),
            tags: Tags::default(),
            inline_policies: vec![(
                PolicyName::parse("AuthorizeS3").unwrap(),
                json!({"Version": "2012-10-17", "Statement": [
                    {"Effect": "Allow", "Action": "rolegate:Authorize", "Resource": "arn:aws:s3:::*"},
                    {"Effect": "Allow", "Action": "sts:DecodeAuthorizationMessage", "Resource": "*"}
                ]}).to_string(),
            )],
            attached_policies: vec![],
        })
        .await
        .unwrap();
    let service_keys = state
        .sts
        .create_access_key(&account, &UserName::parse("storage-svc").unwrap())
        .await
        .unwrap();
    // A broker that may ask about any resource, in any account.
    state
        .store
        .create_iam_user(&NewIamUser {
            account_id: account.clone(),
            path: IamPath::root(),
            name: UserName::parse("broker-svc").unwrap(),
            tags: Tags::default(),
            inline_policies: vec![(
                PolicyName::parse("AuthorizeAnything").unwrap(),
                json!({"Version": "2012-10-17", "Statement": [
                    {"Effect": "Allow", "Action": "rolegate:Authorize", "Resource": "*"}
                ]})
                .to_string(),
            )],
            attached_policies: vec![],
        })
        .await
        .unwrap();
    let broker_keys = state
        .sts
        .create_access_key(&account, &UserName::parse("broker-svc").unwrap())
        .await
        .unwrap();
    let (user_key, user_secret) = {
        let keys = state
            .store
            .list_access_keys(&account, &UserName::parse(seed::WORKLOAD_USER).unwrap())
            .await
            .unwrap();
        assert_eq!(keys.len(), 1);
        // Issue a fresh key we know the secret of.
        state
            .store
            .delete_access_key(&keys[0].access_key_id)
            .await
            .unwrap();
        state
            .sts
            .create_access_key(&account, &UserName::parse(seed::WORKLOAD_USER).unwrap())
            .await
            .unwrap()
    };
    let (caller, _) = state
        .sts
        .resolve_keys(&user_key, None, chrono::Utc::now().timestamp())
        .await
        .unwrap();
    let assumed = state
        .sts
        .assume_role(
            &caller,
            &rolegate::sts::assume::AssumeRoleParams {
                role_arn: format!(
                    "arn:aws:iam::{}:role/{}",
                    seed::DEMO_ACCOUNT_ID,
                    seed::WORKLOAD_ROLE
                ),
                role_session_name: "reader".into(),
                tags: vec![("project".into(), "atlas".into())],
                ..Default::default()
            },
            None,
            chrono::Utc::now().timestamp(),
        )
        .await
        .unwrap();
    let _ = user_secret;
    let creds = assumed.credentials;
    let store = state.store.clone();
    Fixture {
        _db: db,
        base: spawn_state(state),
        service_keys,
        broker_keys,
        session: (
            creds.access_key_id,
            creds.secret_access_key,
            creds.session_token,
        ),
        store,
    }
}

impl Fixture {
    fn session_keys(&self) -> Keys<'_> {
        (&self.session.0, &self.session.1, Some(&self.session.2))
    }

    /// What a storage service at storage.internal received from the session holder.
    fn received(&self, method: &str, path: &str, keys: Keys<'_>) -> Value {
        let url = format!("http://storage.internal{path}");
        let headers = [("host", "storage.internal")];
        let mut all: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        all.extend(sigv4_headers(
            method,
            &url,
            &headers,
            b"",
            keys,
            "storage",
            SystemTime::now(),
        ));
        json!({ "method": method, "path": path, "query": "", "headers": all })
    }

    async fn authorize(&self, body: &Value, keys: Option<Keys<'_>>) -> (u16, Value) {
        let url = format!("{}/v1/authorize", self.base);
        let bytes = serde_json::to_vec(body).unwrap();
        let headers = [
            ("content-type", "application/json"),
            ("host", host_of(&self.base)),
        ];
        let mut request = reqwest::Client::new()
            .post(&url)
            .header("content-type", "application/json")
            .body(bytes.clone());
        if let Some(keys) = keys {
            for (k, v) in sigv4_headers(
                "POST",
                &url,
                &headers,
                &bytes,
                keys,
                "rolegate",
                SystemTime::now(),
            ) {
                request = request.header(k, v);
            }
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    fn service(&self) -> Keys<'_> {
        (&self.service_keys.0, &self.service_keys.1, None)
    }

    fn broker(&self) -> Keys<'_> {
        (&self.broker_keys.0, &self.broker_keys.1, None)
    }
}

async fn authorize_decisions(db: TestStore) {
    let fx = fixture(db).await;
    let ask = |request: Value, action: &str, resource: &str| {
        json!({ "request": request, "service": "storage", "action": action, "resource": resource,
                "context": { "aws:SourceIp": "10.1.2.3" } })
    };
    let session_arn = format!(
        "arn:aws:sts::{}:assumed-role/{}/reader",
        seed::DEMO_ACCOUNT_ID,
        seed::WORKLOAD_ROLE
    );

    // ViewOnlyAccess allows listing a bucket...
    let body = ask(
        fx.received("GET", "/reports", fx.session_keys()),
        "s3:ListBucket",
        "arn:aws:s3:::reports",
    );
    let (status, answer) = fx.authorize(&body, Some(fx.service())).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["decision"], "Allowed", "{answer}");
    assert_eq!(answer["principal_arn"], session_arn);
    assert_eq!(answer["account"], seed::DEMO_ACCOUNT_ID);
    assert_eq!(answer["session_tags"]["project"], "atlas");
    assert_eq!(answer["deciding_statement"]["sid"], "ViewOnly");

    // ...but not reading objects.
    let body = ask(
        fx.received("GET", "/reports/q3.csv", fx.session_keys()),
        "s3:GetObject",
        "arn:aws:s3:::reports/q3.csv",
    );
    let (status, answer) = fx.authorize(&body, Some(fx.service())).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["decision"], "ImplicitDeny", "{answer}");

    // The denial's details travel sealed; STS decodes them for principals allowed to.
    let encoded = answer["encoded_message"]
        .as_str()
        .expect("encoded message")
        .to_owned();
    assert!(!encoded.contains("GetObject"), "the message is opaque");
    let decode = [
        ("Action", "DecodeAuthorizationMessage"),
        ("Version", "2011-06-15"),
        ("EncodedMessage", encoded.as_str()),
    ];
    let (status, xml) = crate::helpers::signed_sts_call(&fx.base, fx.service(), &decode).await;
    assert_eq!(status, 200, "{xml}");
    let decoded = xml
        .split("<DecodedMessage>")
        .nth(1)
        .and_then(|r| r.split("</DecodedMessage>").next())
        .unwrap();
    let decoded: Value = serde_json::from_str(&decoded.replace("&quot;", "\"")).unwrap();
    assert_eq!(decoded["allowed"], false);
    assert_eq!(decoded["context"]["action"], "s3:GetObject");
    assert_eq!(
        decoded["context"]["principal"]["arn"],
        format!(
            "arn:aws:sts::{}:assumed-role/{}/reader",
            seed::DEMO_ACCOUNT_ID,
            seed::WORKLOAD_ROLE
        )
    );
    // The role session itself may not decode (ViewOnlyAccess has no such permission).
    let (status, xml) = crate::helpers::signed_sts_call(&fx.base, fx.session_keys(), &decode).await;
    assert_eq!(status, 403, "{xml}");
    assert!(xml.contains("<Code>AccessDenied</Code>"), "{xml}");
    let garbage = [
        ("Action", "DecodeAuthorizationMessage"),
        ("Version", "2011-06-15"),
        ("EncodedMessage", "v1:AAAA"),
    ];
    let (status, xml) = crate::helpers::signed_sts_call(&fx.base, fx.service(), &garbage).await;
    assert_eq!(status, 400, "{xml}");
    assert!(
        xml.contains("<Code>InvalidAuthorizationMessageException</Code>"),
        "{xml}"
    );

    // A request signed with the wrong secret is not authenticated.
    let wrong = (
        fx.session.0.as_str(),
        "0000000000000000000000000000000000000000",
        Some(fx.session.2.as_str()),
    );
    let body = ask(
        fx.received("GET", "/reports", wrong),
        "s3:ListBucket",
        "arn:aws:s3:::reports",
    );
    let (status, answer) = fx.authorize(&body, Some(fx.service())).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["decision"], "Unauthenticated", "{answer}");
    assert_eq!(answer["error"]["code"], "SignatureDoesNotMatch");
    assert_eq!(answer["error"]["http_status"], 403);

    // The service may only ask about S3 resources.
    let body = ask(
        fx.received("GET", "/x", fx.session_keys()),
        "dynamodb:GetItem",
        "arn:aws:dynamodb:us-east-1:123456789012:table/t",
    );
    let (status, answer) = fx.authorize(&body, Some(fx.service())).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (403, Some("AccessDenied")),
        "{answer}"
    );

    // Callers must sign their call.
    let body = ask(
        fx.received("GET", "/reports", fx.session_keys()),
        "s3:ListBucket",
        "arn:aws:s3:::reports",
    );
    let (status, answer) = fx.authorize(&body, None).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (403, Some("MissingAuthenticationToken")),
        "{answer}"
    );

    // Identity keys come from the verified session, not from the caller.
    let mut spoof = ask(
        fx.received("GET", "/reports", fx.session_keys()),
        "s3:ListBucket",
        "arn:aws:s3:::reports",
    );
    spoof["context"]["aws:PrincipalArn"] = json!("arn:aws:iam::123456789012:role/Admin");
    let (status, answer) = fx.authorize(&spoof, Some(fx.service())).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("InvalidRequest")),
        "{answer}"
    );

    // Revoking the role's sessions turns the answer into an explicit deny.
    fx.store
        .revoke_role_sessions(
            &AccountId::parse(seed::DEMO_ACCOUNT_ID).unwrap(),
            &RoleName::parse(seed::WORKLOAD_ROLE).unwrap(),
            chrono::Utc::now() + chrono::Duration::seconds(1),
        )
        .await
        .unwrap();
    crate::helpers::past_iam_cache_check(&fx._db.hand);
    let body = ask(
        fx.received("GET", "/reports", fx.session_keys()),
        "s3:ListBucket",
        "arn:aws:s3:::reports",
    );
    let (status, answer) = fx.authorize(&body, Some(fx.service())).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["decision"], "ExplicitDeny", "{answer}");
    assert!(
        answer["reason"].as_str().unwrap().contains("revoked"),
        "{answer}"
    );

    // Denials are audited.
    let audit = fx.store.list_audit(20, None).await.unwrap();
    assert!(
        audit.iter().any(|e| e.action == "authorize:s3:GetObject"
            && e.outcome == rolegate::store::Outcome::Denied)
    );
    // ...with the address of the service that asked.
    assert!(
        audit
            .iter()
            .filter(|e| e.action.starts_with("authorize:"))
            .all(|e| e.source_ip.as_deref() == Some("127.0.0.1")),
        "{audit:?}"
    );
}

both_backends!(authorize_decisions, authorize_across_accounts);

/// Issue 15 item 4: account boundaries. The role session (DemoWorkload in
/// 123456789012, ViewOnlyAccess: `iam:Get*`, `s3:ListBucket` on `*`) asks about
/// resources in its own and in another account. AWS cross-account evaluation:
/// the identity side and the owner's resource-based policy must both allow;
/// without a resource policy it is an implicit deny; an explicit deny anywhere
/// wins.
async fn authorize_across_accounts(db: TestStore) {
    let fx = fixture(db).await;
    const OTHER: &str = "999999999999";
    let role_arn = format!(
        "arn:aws:iam::{}:role/{}",
        seed::DEMO_ACCOUNT_ID,
        seed::WORKLOAD_ROLE
    );
    let ask = |action: &str, resource: &str, context: Value, policy: Option<Value>| {
        let mut body = json!({
            "request": fx.received("GET", "/x", fx.session_keys()),
            "service": "storage",
            "action": action,
            "resource": resource,
            "context": context,
        });
        if let Some(policy) = policy {
            body["resource_policy"] = policy;
        }
        body
    };
    let grant = |principal: &str, action: &str, resource: &str| {
        json!({"Version": "2012-10-17", "Statement": [{
            "Sid": "Grant", "Effect": "Allow", "Principal": {"AWS": principal},
            "Action": action, "Resource": resource
        }]})
    };
    let fx_ref = &fx;
    let decide = |body: Value| async move {
        let (status, answer) = fx_ref.authorize(&body, Some(fx_ref.broker())).await;
        assert_eq!(status, 200, "{answer}");
        answer
    };
    let own_role = format!("arn:aws:iam::{}:role/Payroll", seed::DEMO_ACCOUNT_ID);
    let other_role = format!("arn:aws:iam::{OTHER}:role/Payroll");

    // Same account: the identity policies decide, as before.
    let answer = decide(ask("iam:GetRole", &own_role, json!({}), None)).await;
    assert_eq!(answer["decision"], "Allowed", "{answer}");

    // Another account (from the ARN), no resource policy: implicit deny, and why.
    let answer = decide(ask("iam:GetRole", &other_role, json!({}), None)).await;
    assert_eq!(answer["decision"], "ImplicitDeny", "{answer}");
    let reason = answer["reason"].as_str().unwrap();
    assert!(
        reason.contains("cross-account") && reason.contains(OTHER),
        "{reason}"
    );
    assert!(reason.contains("no resource-based policy"), "{reason}");
    // The denial is sealed for the client like any other.
    assert!(answer["encoded_message"].is_string(), "{answer}");

    // Another account with the owner's resource policy granting this role: allowed.
    let answer = decide(ask(
        "iam:GetRole",
        &other_role,
        json!({}),
        Some(grant(&role_arn, "iam:GetRole", &other_role)),
    ))
    .await;
    assert_eq!(answer["decision"], "Allowed", "{answer}");
    // The same policy as a string holding the document.
    let answer = decide(ask(
        "iam:GetRole",
        &other_role,
        json!({}),
        Some(json!(
            grant(&role_arn, "iam:GetRole", &other_role).to_string()
        )),
    ))
    .await;
    assert_eq!(answer["decision"], "Allowed", "{answer}");

    // The resource policy grants someone else: implicit deny.
    let answer = decide(ask(
        "iam:GetRole",
        &other_role,
        json!({}),
        Some(grant(
            &format!("arn:aws:iam::{}:role/Someone", seed::DEMO_ACCOUNT_ID),
            "iam:GetRole",
            &other_role,
        )),
    ))
    .await;
    assert_eq!(answer["decision"], "ImplicitDeny", "{answer}");
    assert!(
        answer["reason"].as_str().unwrap().contains("cross-account"),
        "{answer}"
    );

    // Cross-account needs both sides: the resource policy alone does not do
    // (ViewOnlyAccess does not allow s3:GetObject).
    let answer = decide(ask(
        "s3:GetObject",
        "arn:aws:s3:::payroll/2026.csv",
        json!({"aws:ResourceAccount": OTHER}),
        Some(grant(&role_arn, "s3:GetObject", "arn:aws:s3:::payroll/*")),
    ))
    .await;
    assert_eq!(answer["decision"], "ImplicitDeny", "{answer}");

    // S3 ARNs have no account: aws:ResourceAccount names the owner.
    let answer = decide(ask(
        "s3:ListBucket",
        "arn:aws:s3:::payroll",
        json!({"aws:ResourceAccount": OTHER}),
        None,
    ))
    .await;
    assert_eq!(answer["decision"], "ImplicitDeny", "{answer}");
    assert!(
        answer["reason"].as_str().unwrap().contains(OTHER),
        "{answer}"
    );
    let answer = decide(ask(
        "s3:ListBucket",
        "arn:aws:s3:::payroll",
        json!({"aws:ResourceAccount": seed::DEMO_ACCOUNT_ID}),
        None,
    ))
    .await;
    assert_eq!(answer["decision"], "Allowed", "{answer}");
    let answer = decide(ask(
        "s3:ListBucket",
        "arn:aws:s3:::payroll",
        json!({"aws:ResourceAccount": OTHER}),
        Some(grant(&role_arn, "s3:ListBucket", "arn:aws:s3:::payroll")),
    ))
    .await;
    assert_eq!(answer["decision"], "Allowed", "{answer}");

    // An explicit deny in the resource policy wins, in the own account and across.
    let deny = |resource: &str| {
        json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": role_arn.as_str()}, "Action": "*", "Resource": resource},
            {"Sid": "NoWorkloads", "Effect": "Deny", "Principal": "*", "Action": "s3:ListBucket", "Resource": resource}
        ]})
    };
    for owner in [seed::DEMO_ACCOUNT_ID, OTHER] {
        let answer = decide(ask(
            "s3:ListBucket",
            "arn:aws:s3:::payroll",
            json!({"aws:ResourceAccount": owner}),
            Some(deny("arn:aws:s3:::payroll")),
        ))
        .await;
        assert_eq!(answer["decision"], "ExplicitDeny", "{owner}: {answer}");
        assert_eq!(answer["deciding_statement"]["sid"], "NoWorkloads");
    }

    // A resource policy that is not one: the service's mistake, refused.
    let (status, answer) = fx
        .authorize(
            &ask(
                "s3:ListBucket",
                "arn:aws:s3:::payroll",
                json!({}),
                Some(json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]})),
            ),
            Some(fx.broker()),
        )
        .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("MalformedPolicyDocument")),
        "{answer}"
    );
}
