//! `repo copy`: copy every (filtered) tag of a repository.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use regclient::copy::{self, CopyOpts};
use regclient::scheme::TagOpts;
use regclient::{Error, ErrorKind, Result};

use super::tag::{filter_tags, patterns};
use super::{invalid, Ctx};

pub fn copy(ctx: &Ctx) -> Result<()> {
    let src = ctx.reference(ctx.m.arg(0))?;
    let dst = ctx.reference(ctx.m.arg(1))?;
    let (include, exclude) = patterns(ctx)?;
    let concurrent: i64 = ctx.m.value("concurrent").parse().map_err(|_| {
        invalid(format!(
            "--concurrent must be a number, got {:?}",
            ctx.m.value("concurrent")
        ))
    })?;
    let src_scheme = ctx.client.scheme(&src)?;
    let dst_scheme = ctx.client.scheme(&dst)?;
    let tags = src_scheme
        .tag_list(&src, &TagOpts::default())
        .map_err(|e| e.context(format!("listing tags of {}", src.repo_name())))?
        .tags;
    let mut tags = filter_tags(tags, &include, &exclude);
    if ctx.m.on("new-tags") {
        let existing = match dst_scheme.tag_list(&dst, &TagOpts::default()) {
            Ok(tl) => tl.tags,
            Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e.context(format!("listing tags of {}", dst.repo_name()))),
        };
        tags.retain(|t| !existing.contains(t));
    }
    if tags.is_empty() {
        ctx.log
            .info("no tags to copy", &[("source", src.repo_name().as_str())]);
        return Ok(());
    }
    let workers = if concurrent <= 0 {
        tags.len()
    } else {
        (concurrent as usize).min(tags.len())
    };
    // The tags mostly share manifests: one `Seen` lets each be checked at the target once.
    let opts = CopyOpts {
        referrers: ctx.m.on("referrers"),
        seen: Some(Default::default()),
        ..Default::default()
    };
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let errors: Mutex<Vec<Error>> = Mutex::new(Vec::new());
    let client = &ctx.client;
    let log = ctx.log.clone();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(tag) = tags.get(i) else { return };
                let (from, to) = (src.set_tag(tag), dst.set_tag(tag));
                log.info(
                    "copying tag",
                    &[
                        ("source", from.common_name().as_str()),
                        ("target", to.common_name().as_str()),
                    ],
                );
                let res = copy::image_copy(
                    src_scheme,
                    &from,
                    dst_scheme,
                    &to,
                    &opts,
                    client.pool(),
                    &|_| {},
                );
                if let Err(e) = res {
                    stop.store(true, Ordering::SeqCst);
                    errors
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(e.context(format!(
                            "copying {} to {}",
                            from.common_name(),
                            to.common_name()
                        )));
                }
            });
        }
    });
    let errors = errors.into_inner().unwrap_or_else(|e| e.into_inner());
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.into_iter().next().expect("one error")),
        _ => Err(Error::new(
            errors[0].kind(),
            errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
        )),
    }
}
