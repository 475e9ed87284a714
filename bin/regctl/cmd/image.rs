//! `image copy|digest|inspect` (`image delete` and `image manifest` reuse the manifest
//! commands).

use std::io::IsTerminal;

use regclient::copy::{self, CopyOpts, Event};
use regclient::{format, Platform, Result};

use super::{invalid, with_raw, Ctx};
use crate::log::{Level, Logger};
use crate::progress::{self, Progress, Step};

pub fn digest(ctx: &Ctx) -> Result<()> {
    super::manifest::head_with(ctx, true)
}

pub fn inspect(ctx: &Ctx) -> Result<()> {
    let r = ctx.reference(ctx.m.arg(0))?;
    let p = ctx.platform()?.unwrap_or_else(Platform::host);
    let (_, cfg, raw) = ctx.client.image_config(&r, &p)?;
    let data = with_raw(format::image_config(&cfg, &raw, &r), &raw, &[]);
    ctx.render(ctx.m.value("format"), &data)
}

pub fn copy(ctx: &Ctx) -> Result<()> {
    let src = ctx.reference(ctx.m.arg(0))?;
    let tgt = ctx.reference(ctx.m.arg(1))?;
    let referrers = ctx.m.on("referrers");
    let referrer_ref = |flag: &str| -> Result<Option<regclient::Reference>> {
        match ctx.m.value(flag) {
            "" => Ok(None),
            _ if !referrers => Err(invalid(format!("--{flag} requires --referrers"))),
            s => ctx.reference(s).map(Some),
        }
    };
    let opts = CopyOpts {
        platform: ctx.platform()?,
        platforms: ctx
            .m
            .values("platforms")
            .iter()
            .map(|p| Platform::parse(p))
            .collect::<Result<_>>()?,
        digest_tags: ctx.m.on("digest-tags"),
        referrers,
        referrer_filters: Vec::new(),
        referrer_src: referrer_ref("referrers-src")?,
        referrer_tgt: referrer_ref("referrers-tgt")?,
        fast: ctx.m.on("fast"),
        force_recursive: ctx.m.on("force-recursive"),
        include_external: ctx.m.on("include-external"),
        referrer_slow: false,
        target_head: None,
        seen: None,
        deadline: None,
        source_manifest: None,
    };
    let src_scheme = ctx.client.scheme(&src)?;
    let tgt_scheme = ctx.client.scheme(&tgt)?;
    // The live display is for people watching a terminal; with -v the log lines are the output.
    let show = std::io::stderr().is_terminal() && ctx.m.given("verbosity").is_none();
    // The total arrives with the copy's plan event.
    let progress = show.then(|| Progress::new(0));
    // Ctx is not Sync (it tracks references to close), so the callback gets its own logger.
    let log = ctx.log.clone();
    let on_event = |ev: &Event| match &progress {
        Some(p) => p.event(ev),
        None => log_event(&log, ev),
    };
    let res = copy::image_copy(
        src_scheme,
        &src,
        tgt_scheme,
        &tgt,
        &opts,
        ctx.client.pool(),
        &on_event,
    );
    if let Some(p) = &progress {
        p.finish();
    }
    let report = res.map_err(|e| {
        e.context(format!(
            "copying {} to {}",
            src.common_name(),
            tgt.common_name()
        ))
    })?;
    ctx.log.info(
        "copy complete",
        &[
            ("source", src.common_name().as_str()),
            ("target", tgt.common_name().as_str()),
            ("digest", report.digest.to_string().as_str()),
            ("manifests", report.manifests_copied.to_string().as_str()),
            ("blobs", report.blobs_copied.to_string().as_str()),
        ],
    );
    match ctx.m.value("format") {
        "" => ctx.out(format!("{}\n", tgt.common_name()).as_bytes()),
        fmt => ctx.render(fmt, &format::reference(&tgt)),
    }
}

/// Without the live display, copy steps are info log lines (`-v info`).
fn log_event(log: &Logger, ev: &Event) {
    if !log.enabled(Level::Info) {
        return;
    }
    // Byte counts are for the live display only.
    let (msg, digest) = match progress::step(ev) {
        Some(Step::Skipped { digest }) => ("skipped, already at the target", digest),
        Some(Step::Started { digest, .. }) => ("blob copy started", digest),
        Some(Step::Finished { digest }) => ("blob copied", digest),
        Some(Step::ManifestPushed { digest }) => ("manifest pushed", digest),
        Some(Step::ManifestSkipped { digest }) => ("manifest already at the target", digest),
        Some(Step::Progress { .. } | Step::Plan { .. }) | None => return,
    };
    log.info(msg, &[("digest", digest.as_str())]);
}
