//! Mapping-rule compile and evaluation time: 1,500 groups against 200 rules (50
//! regex; the rest contains_any, equals, starts_with, glob, for_each, deny and
//! session templates).
//!
//! `cargo bench --bench mapping -- --warm-up-time 1 --measurement-time 3`

// Tests and benchmarks may panic on what they did not expect; server code may not.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unreachable
)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rolegate::iam::{AccountId, RoleName};
use rolegate::mapping::{Catalog, ClaimsHygiene, CompiledRuleset, Rule, SourceClaims};
use serde_json::{Value, json};

const ROLES: [&str; 8] = [
    "Developer",
    "ReadOnly",
    "Admin",
    "PowerUser",
    "Billing",
    "Auditor",
    "DataEngineer",
    "Support",
];

fn account(i: usize) -> String {
    format!("{:012}", 100_000_000_000 + i)
}

fn catalog() -> Catalog {
    let mut catalog = Catalog::new();
    for a in 0..20 {
        for role in ROLES {
            catalog.add_role(
                AccountId::parse(account(a)).unwrap(),
                RoleName::parse(role).unwrap(),
                43_200,
            );
        }
    }
    catalog
}

/// 1,500 groups: mostly unrelated directory groups, some team groups and some
/// `aws#ACCOUNT#ROLE` groups.
fn claims() -> SourceClaims {
    let mut groups: Vec<String> = (0..1_400).map(|i| format!("dept-{i:04}-members")).collect();
    groups.extend((0..80).map(|i| format!("team-{i:03}")));
    groups.extend((0..20).map(|i| format!("aws#{}#{}", account(i), ROLES[i % ROLES.len()])));
    let claims = json!({"groups": groups, "email": "Alice.Smith@Example.com",
        "department": "engineering", "cost_center": "cc-1234", "user_name": "alice"});
    let Value::Object(map) = claims else {
        unreachable!()
    };
    SourceClaims::from_json("corp", &map, &ClaimsHygiene::default()).unwrap()
}

fn rules() -> Vec<Rule> {
    let mut rules = Vec::new();
    let mut push = |i: usize, effect: &str, extra: Value| {
        let mut rule = json!({"id": format!("r-{i:03}"), "name": format!("rule {i}"),
            "effect": effect, "source": ["corp"], "priority": (i % 7) as i32 * 10});
        for (k, v) in extra.as_object().unwrap() {
            rule[k] = v.clone();
        }
        rules.push(serde_json::from_value::<Rule>(rule).unwrap());
    };
    let grant = |i: usize| json!([{"account": account(i % 20), "role": ROLES[i % ROLES.len()]}]);
    let mut i = 0;
    // 50 regex rules.
    for k in 0..50 {
        let pattern = match k % 5 {
            0 => format!("team-{:02}[0-9]", k % 8),
            1 => format!("dept-0{:02}[0-9]-(members|owners)", k),
            2 => "aws#[0-9]{12}#(Admin|PowerUser)".to_owned(),
            3 => format!("(proj|team)-{k}-[a-z]+"),
            _ => "(a+)+$".to_owned(),
        };
        push(
            i,
            "grant",
            json!({"when": {"claim": "groups", "op": "regex", "value": pattern},
            "grant": grant(i)}),
        );
        i += 1;
    }
    // 40 contains_any, 30 equals, 20 starts_with, 20 glob.
    for k in 0..40 {
        let values: Vec<String> = (0..5)
            .map(|j| format!("dept-{:04}-members", k * 37 + j))
            .collect();
        push(
            i,
            "grant",
            json!({"when": {"claim": "groups", "op": "contains_any", "values": values},
            "grant": grant(i)}),
        );
        i += 1;
    }
    for k in 0..30 {
        push(
            i,
            "grant",
            json!({"when": {"all": [
                {"claim": "groups", "op": "equals", "value": format!("team-{:03}", k * 3)},
                {"claim": "email", "op": "ends_with", "value": "@example.com", "case": "insensitive"}]},
            "grant": grant(i)}),
        );
        i += 1;
    }
    for k in 0..20 {
        push(
            i,
            "grant",
            json!({"when": {"claim": "groups", "op": "starts_with", "value": format!("team-0{k:02}")},
            "grant": grant(i)}),
        );
        i += 1;
    }
    for k in 0..20 {
        push(
            i,
            "grant",
            json!({"when": {"claim": "groups", "op": "glob", "value": format!("dept-*{k:02}-owners")},
            "grant": grant(i)}),
        );
        i += 1;
    }
    // 10 for_each, 15 deny, 15 session.
    for _ in 0..10 {
        push(
            i,
            "grant",
            json!({"for_each": {"claim": "groups",
                "regex": r"aws#(?P<account>[0-9]{12})#(?P<role>[A-Za-z0-9+=,.@_-]{1,64})"},
            "grant": [{"account": "${match.account}", "role": "${match.role}"}]}),
        );
        i += 1;
    }
    for k in 0..15 {
        push(
            i,
            "deny",
            json!({"when": {"claim": "groups", "op": "contains_any",
                "values": [format!("team-{:03}", k * 5), "contractors"]},
            "target": {"accounts": [account(k)], "roles": ["Admin"]}}),
        );
        i += 1;
    }
    for k in 0..15 {
        push(
            i,
            "session",
            json!({"when": {"claim": "email", "op": "exists"},
            "session": {"name": "${claims.email|lower|truncate:64}",
                "tags": {"department": "${claims.department|default:none}",
                         "cost-center": "${claims.cost_center|upper}",
                         format!("k{k}"): "${claims.title|default:unknown}"},
                "transitive_tag_keys": ["cost-center"],
                "max_duration_seconds": 3600 + k as i64 * 60}}),
        );
        i += 1;
    }
    assert_eq!(rules.len(), 200);
    rules
}

fn bench(c: &mut Criterion) {
    let rules = rules();
    let claims = claims();
    let catalog = catalog();
    let now = chrono::DateTime::UNIX_EPOCH;
    let compiled = CompiledRuleset::compile(&rules).unwrap_or_else(|e| panic!("{e:?}"));
    let out = compiled.evaluate(&claims, &catalog, now);
    assert!(
        out.entitlements.len() > 10 && !out.removed.is_empty(),
        "{out:?}"
    );
    assert!(out.entitlements.iter().all(|e| e.session.name.is_some()));

    let mut group = c.benchmark_group("mapping");
    group.sample_size(10);
    group.bench_function("compile/200_rules", |b| {
        b.iter(|| CompiledRuleset::compile(black_box(&rules)).is_ok())
    });
    group.finish();

    let mut group = c.benchmark_group("mapping");
    group.throughput(Throughput::Elements(1));
    group.bench_function("evaluate/1500_groups_200_rules", |b| {
        b.iter(|| {
            compiled
                .evaluate(black_box(&claims), black_box(&catalog), now)
                .entitlements
                .len()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
