//! `manifest get|head|put|delete` (also behind `image manifest|digest|delete`).

use std::io::Read;

use regclient::format::{self, Data};
use regclient::manifest::{Source, MAX_PUSH};
use regclient::scheme::{DeleteOpts, PutOpts};
use regclient::{Digest, Error, ErrorKind, Manifest, Result};

use super::{invalid, is_not_found, with_raw, Ctx};

pub fn get(ctx: &Ctx) -> Result<()> {
    let r = ctx.reference(ctx.m.arg(0))?;
    let platform = ctx.platform()?;
    if platform.is_some() && ctx.m.on("require-list") {
        return Err(invalid(
            "--require-list cannot be used with --platform".to_string(),
        ));
    }
    let m = match &platform {
        Some(p) => ctx.client.manifest_get_platform(&r, p)?,
        None => ctx.client.manifest_get(&r)?,
    };
    let data = with_raw(format::manifest(&m, &r), m.raw(), m.headers());
    ctx.render(ctx.m.value("format"), &data)
}

pub fn head(ctx: &Ctx) -> Result<()> {
    head_with(ctx, ctx.m.on("require-digest"))
}

/// `manifest head`; `require_digest` falls back to a GET when the HEAD reports no digest.
pub fn head_with(ctx: &Ctx, require_digest: bool) -> Result<()> {
    let r = ctx.reference(ctx.m.arg(0))?;
    let fmt = ctx.m.value("format");
    // Printing the digest needs one, so the default output implies --require-digest.
    let require_digest = require_digest || fmt.is_empty() || fmt == "digest";
    let (desc, headers) = match ctx.platform()? {
        Some(p) => {
            let m = ctx.client.manifest_get_platform(&r, &p)?;
            (Some(m.descriptor()), m.headers().to_vec())
        }
        None => {
            let head = ctx
                .client
                .scheme(&r)?
                .manifest_head(&r)
                .map_err(|e| e.context(format!("reading manifest {}", r.common_name())))?;
            let desc = match head.descriptor() {
                Some(d) => Some(d),
                None if require_digest => Some(ctx.client.manifest_get(&r)?.descriptor()),
                None => None,
            };
            (desc, head.headers)
        }
    };
    match fmt {
        "" | "digest" => {
            let d = desc.ok_or_else(|| {
                Error::new(
                    ErrorKind::NotFound,
                    format!("no digest returned for {}", r.common_name()),
                )
            })?;
            ctx.out(format!("{}\n", d.digest).as_bytes())
        }
        _ => {
            let mut data = match &desc {
                Some(d) => format::descriptor(d),
                None => Data::new(regclient::template::Value::Nil),
            };
            data.raw_headers = headers;
            ctx.render(fmt, &data)
        }
    }
}

pub fn put(ctx: &Ctx) -> Result<()> {
    let r = ctx.reference(ctx.m.arg(0))?;
    let mut raw = Vec::new();
    std::io::stdin()
        .lock()
        .take(MAX_PUSH as u64 + 1)
        .read_to_end(&mut raw)
        .map_err(|e| Error::io(e, "reading the manifest from stdin"))?;
    if raw.len() > MAX_PUSH {
        return Err(Error::new(
            ErrorKind::SizeLimit,
            format!("manifest exceeds the {MAX_PUSH} byte limit"),
        ));
    }
    let content_type = ctx.m.value("content-type");
    let m = Manifest::from_bytes(
        raw,
        Source {
            content_type: Some(content_type).filter(|c| !c.is_empty()),
            ..Default::default()
        },
    )?;
    let by_digest = ctx.m.on("by-digest");
    let target = if by_digest {
        r.set_digest(&m.digest().to_string())
    } else {
        r.clone()
    };
    ctx.client
        .scheme(&target)?
        .manifest_put(&target, &m, PutOpts::default())
        .map_err(|e| e.context(format!("pushing manifest {}", target.common_name())))?;
    match ctx.m.value("format") {
        "" if by_digest => ctx.out(format!("{}\n", m.digest()).as_bytes()),
        "" => Ok(()),
        fmt => ctx.render(fmt, &with_raw(format::manifest(&m, &target), m.raw(), &[])),
    }
}

pub fn delete(ctx: &Ctx) -> Result<()> {
    let r = ctx.reference(ctx.m.arg(0))?;
    let ignore = ctx.m.on("ignore-missing");
    let res = (|| {
        let target = if !r.digest.is_empty() {
            r.set_digest(&r.digest)
        } else if ctx.m.on("force-tag-dereference") {
            let d: Digest = ctx.resolve_digest(&r, None)?;
            r.set_digest(&d.to_string())
        } else {
            return Err(Error::new(
                ErrorKind::MissingTagOrDigest,
                format!(
                    "missing digest: {} is a tag, deleting it would delete every tag on its \
                     manifest (use --force-tag-dereference, or tag delete)",
                    r.common_name()
                ),
            ));
        };
        ctx.client
            .scheme(&target)?
            .manifest_delete(
                &target,
                DeleteOpts {
                    check_referrers: ctx.m.on("referrers"),
                },
            )
            .map_err(|e| e.context(format!("deleting manifest {}", target.common_name())))
    })();
    match res {
        Err(e) if ignore && is_not_found(&e) => {
            ctx.log
                .info("manifest not found", &[("ref", r.common_name().as_str())]);
            Ok(())
        }
        res => res,
    }
}
