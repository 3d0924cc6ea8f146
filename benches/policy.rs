//! Policy evaluation throughput.
//!
//! `cargo bench --bench policy -- --warm-up-time 1 --measurement-time 3`

// Tests and benchmarks may panic on what they did not expect; server code may not.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unreachable
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rolegate::policy::{
    ContextKeys, Decision, ParseOptions, Policy, PolicyKind, PolicySet, PrincipalRef, Request,
    evaluate,
};

const SMALL: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "ReadOwnData", "Effect": "Allow",
     "Action": ["s3:GetObject", "s3:ListBucket"],
     "Resource": ["arn:aws:s3:::team-data", "arn:aws:s3:::team-data/*"],
     "Condition": {"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.168.0.0/16"]},
                   "Bool": {"aws:SecureTransport": "true"}}},
    {"Sid": "DescribeEc2", "Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"},
    {"Sid": "WriteInbox", "Effect": "Allow", "Action": "s3:PutObject",
     "Resource": "arn:aws:s3:::team-data/inbox/*",
     "Condition": {"StringEquals": {"aws:PrincipalTag/team": "data"}}},
    {"Sid": "NoDeletes", "Effect": "Deny", "Action": ["s3:DeleteObject", "s3:DeleteBucket"], "Resource": "*"}
  ]
}"#;

/// Counts allocations so the benchmark can check that evaluation allocates nothing.
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

struct Case<'a> {
    name: &'static str,
    policies: &'a [&'a Policy],
    action: &'static str,
    resource: &'static str,
    expected: Decision,
}

fn bench(c: &mut Criterion) {
    let small = match Policy::parse(SMALL, ParseOptions::new(PolicyKind::Identity)) {
        Ok(p) => p,
        Err(e) => panic!("small policy: {e:#}"),
    };
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/corpora/aws-managed-policies/ReadOnlyAccess.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let read_only = match Policy::parse(&text, ParseOptions::new(PolicyKind::Identity)) {
        Ok(p) => p,
        Err(e) => panic!("ReadOnlyAccess: {e:#}"),
    };

    let mut ctx = ContextKeys::new();
    for (k, v) in [
        ("aws:username", "alice"),
        ("aws:userid", "AIDAEXAMPLEALICE"),
        ("aws:PrincipalAccount", "111122223333"),
        ("aws:PrincipalArn", "arn:aws:iam::111122223333:user/alice"),
        ("aws:PrincipalTag/team", "data"),
        ("aws:SourceIp", "10.1.2.3"),
        ("aws:SecureTransport", "true"),
        ("aws:CurrentTime", "2025-01-01T12:00:00Z"),
        ("aws:RequestedRegion", "eu-west-1"),
        ("aws:MultiFactorAuthPresent", "true"),
    ] {
        ctx.insert(k, v);
    }
    let principal = PrincipalRef::Aws {
        arn: "arn:aws:iam::111122223333:user/alice",
        account: "111122223333",
    };
    let small_set = [&small];
    let read_only_set = [&read_only];
    let cases = [
        Case {
            name: "small/allowed",
            policies: &small_set,
            action: "s3:GetObject",
            resource: "arn:aws:s3:::team-data/reports/q1.csv",
            expected: Decision::Allowed,
        },
        Case {
            name: "small/denied",
            policies: &small_set,
            action: "s3:PutObject",
            resource: "arn:aws:s3:::other-bucket/x",
            expected: Decision::ImplicitDeny,
        },
        Case {
            name: "read_only_access/allowed",
            policies: &read_only_set,
            action: "ec2:DescribeInstances",
            resource: "*",
            expected: Decision::Allowed,
        },
        Case {
            name: "read_only_access/denied",
            policies: &read_only_set,
            action: "s3:PutObject",
            resource: "arn:aws:s3:::team-data/x",
            expected: Decision::ImplicitDeny,
        },
    ];

    let mut group = c.benchmark_group("evaluate");
    group.throughput(Throughput::Elements(1));
    for case in cases {
        let set = PolicySet {
            identity: case.policies,
            ..Default::default()
        };
        let req = Request {
            principal,
            action: case.action,
            resource: case.resource,
            context: &ctx,
        };
        assert_eq!(
            evaluate(&set, &req).decision,
            case.expected,
            "{}",
            case.name
        );
        group.bench_function(case.name, |b| {
            b.iter(|| evaluate(black_box(&set), black_box(&req)).decision)
        });
    }
    group.finish();

    let mut group = c.benchmark_group("parse");
    group.bench_function("read_only_access", |b| {
        b.iter(|| Policy::parse(black_box(&text), ParseOptions::new(PolicyKind::Identity)).is_ok())
    });
    group.finish();

    // Policy-variable parsing of session policies (issue 15 item 12): an
    // ordinary one, and ~1,000 unclosed `${` followed by 250 KB of spaces
    // (2,000 packed characters: under the 2,048 packed limit).
    let hostile = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/{}{}"}}]}}"#,
        "${".repeat(1_000),
        " ".repeat(250_000)
    );
    let quoted = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/{}{}"}}]}}"#,
        "${a,'".repeat(400),
        " ".repeat(250_000)
    );
    let mut group = c.benchmark_group("variables");
    group.sample_size(20);
    for (name, doc) in [
        ("ordinary_session_policy", SMALL),
        ("hostile_unclosed_1000x_250k_spaces", hostile.as_str()),
        ("hostile_quoted_defaults_400x_250k_spaces", quoted.as_str()),
    ] {
        assert!(Policy::parse(doc, ParseOptions::new(PolicyKind::Session)).is_ok());
        group.bench_function(name, |b| {
            b.iter(|| Policy::parse(black_box(doc), ParseOptions::new(PolicyKind::Session)).is_ok())
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
