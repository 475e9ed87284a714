//! Self-test of the fake registry: every endpoint and every fault, through a raw HTTP client.

mod support;

use support::fakereg::{http, FakeRegistry};

#[test]
fn ping() {
    let reg = FakeRegistry::start();
    let r = http(&reg.host(), "GET", "/v2/", &[], b"");
    assert_eq!(r.status, 200);
}
