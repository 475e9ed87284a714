//! `blob get|head|put|delete|copy`.

use std::io::Write;

use regclient::copy;
use regclient::format;
use regclient::scheme::BlobExpect;
use regclient::{Descriptor, Digest, Error, Result};

use super::{headers_text, with_raw, Ctx};

/// A descriptor for a blob known only by digest (size unknown).
fn by_digest(s: &str) -> Result<Descriptor> {
    Ok(Descriptor {
        digest: Digest::parse(s)?,
        size: -1,
        ..Default::default()
    })
}

pub fn get(ctx: &Ctx) -> Result<()> {
    let r = ctx.reference(ctx.m.arg(0))?;
    let desc = by_digest(ctx.m.arg(1))?;
    let mut rdr = ctx.client.scheme(&r)?.blob_get(&r, &desc).map_err(|e| {
        e.context(format!(
            "reading blob {} from {}",
            desc.digest,
            r.repo_name()
        ))
    })?;
    let fmt = ctx.m.value("format");
    let stream = match fmt {
        // The pretty form of a blob is its bytes.
        "{{printPretty .}}" | "body" | "raw-body" | "rawBody" => true,
        "raw" => {
            let mut h = headers_text(rdr.headers());
            if !h.is_empty() {
                h.push('\n');
            }
            ctx.out(h.as_bytes())?;
            true
        }
        _ => false,
    };
    if stream {
        let mut out = std::io::stdout().lock();
        std::io::copy(&mut rdr, &mut out)?;
        out.flush()?;
        return Ok(());
    }
    let d = rdr.descriptor().clone();
    let data = with_raw(format::blob(&d, rdr.headers()), &[], rdr.headers());
    ctx.render(fmt, &data)
}

pub fn head(ctx: &Ctx) -> Result<()> {
    let r = ctx.reference(ctx.m.arg(0))?;
    let desc = by_digest(ctx.m.arg(1))?;
    let d = ctx.client.scheme(&r)?.blob_head(&r, &desc).map_err(|e| {
        e.context(format!(
            "checking blob {} in {}",
            desc.digest,
            r.repo_name()
        ))
    })?;
    match ctx.m.value("format") {
        // Layouts have no headers; their descriptor is the useful answer.
        "" => {
            let v = serde_json::to_vec_pretty(&d).map_err(|e| invalid_json(e.to_string()))?;
            ctx.out(&v)?;
            ctx.out(b"\n")
        }
        fmt => ctx.render(fmt, &format::blob(&d, &[])),
    }
}

fn invalid_json(msg: String) -> Error {
    Error::new(regclient::ErrorKind::Parse, msg)
}

pub fn put(ctx: &Ctx) -> Result<()> {
    let r = ctx.reference(ctx.m.arg(0))?;
    let expect = BlobExpect {
        digest: match ctx.m.value("digest") {
            "" => None,
            d => Some(Digest::parse(d)?),
        },
        ..Default::default()
    };
    let mut stdin = std::io::stdin().lock();
    let d = ctx
        .client
        .scheme(&r)?
        .blob_put(&r, &expect, &mut stdin)
        .map_err(|e| e.context(format!("pushing blob to {}", r.repo_name())))?;
    match ctx.m.value("format") {
        "{{println .Digest}}" => ctx.out(format!("{}\n", d.digest).as_bytes()),
        fmt => ctx.render(fmt, &format::descriptor(&d)),
    }
}

pub fn delete(ctx: &Ctx) -> Result<()> {
    let r = ctx.reference(ctx.m.arg(0))?;
    let desc = by_digest(ctx.m.arg(1))?;
    ctx.client.scheme(&r)?.blob_delete(&r, &desc).map_err(|e| {
        e.context(format!(
            "deleting blob {} from {}",
            desc.digest,
            r.repo_name()
        ))
    })
}

pub fn copy(ctx: &Ctx) -> Result<()> {
    let src = ctx.reference(ctx.m.arg(0))?;
    let tgt = ctx.reference(ctx.m.arg(1))?;
    let desc = by_digest(ctx.m.arg(2))?;
    let src_scheme = ctx.client.scheme(&src)?;
    let tgt_scheme = ctx.client.scheme(&tgt)?;
    // The copy verifies size and digest, so learn the size first.
    let desc = src_scheme.blob_head(&src, &desc).map_err(|e| {
        e.context(format!(
            "checking blob {} in {}",
            desc.digest,
            src.repo_name()
        ))
    })?;
    copy::blob_copy(src_scheme, &src, tgt_scheme, &tgt, &desc, &|_| {}).map_err(|e| {
        e.context(format!(
            "copying blob {} from {} to {}",
            desc.digest,
            src.repo_name(),
            tgt.repo_name()
        ))
    })?;
    Ok(())
}
