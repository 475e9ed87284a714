//! `tag ls` and `tag delete`.

use regclient::format;
use regclient::scheme::TagOpts;
use regclient::{Error, ErrorKind, Result};

use super::{invalid, is_not_found, with_raw, Ctx};
use regclient::regex::Regex;

pub fn list(ctx: &Ctx) -> Result<()> {
    let r = ctx.reference(ctx.m.arg(0))?;
    let (include, exclude) = patterns(ctx)?;
    let limit = match ctx.m.value("limit") {
        "" => None,
        n => Some(
            n.parse::<usize>()
                .map_err(|_| invalid(format!("--limit must be a number, got {n:?}")))?,
        ),
    };
    let opts = TagOpts {
        last: Some(ctx.m.value("last").to_string()).filter(|s| !s.is_empty()),
        limit,
    };
    let mut tl = ctx
        .client
        .scheme(&r)?
        .tag_list(&r, &opts)
        .map_err(|e| e.context(format!("listing tags of {}", r.repo_name())))?;
    tl.tags = filter_tags(tl.tags, &include, &exclude);
    let data = with_raw(format::tag_list(&tl, &r), &tl.raw, &tl.headers);
    ctx.render(ctx.m.value("format"), &data)
}

/// The `--include` and `--exclude` patterns, anchored (`^…$`).
pub fn patterns(ctx: &Ctx) -> Result<(Vec<Regex>, Vec<Regex>)> {
    let compile = |pats: &[String]| -> Result<Vec<Regex>> {
        pats.iter()
            .map(|p| Regex::anchored(p).map_err(|e| invalid(e.to_string())))
            .collect()
    };
    Ok((
        compile(ctx.m.values("include"))?,
        compile(ctx.m.values("exclude"))?,
    ))
}

/// Keeps tags matching any include (all when there are none) and no exclude.
pub fn filter_tags(tags: Vec<String>, include: &[Regex], exclude: &[Regex]) -> Vec<String> {
    tags.into_iter()
        .filter(|t| include.is_empty() || include.iter().any(|re| re.is_match(t)))
        .filter(|t| !exclude.iter().any(|re| re.is_match(t)))
        .collect()
}

pub fn delete(ctx: &Ctx) -> Result<()> {
    let r = ctx.reference(ctx.m.arg(0))?;
    if r.tag.is_empty() {
        return Err(Error::new(
            ErrorKind::MissingTagOrDigest,
            format!("missing tag: {} has no tag to delete", r.common_name()),
        ));
    }
    match ctx.client.scheme(&r)?.tag_delete(&r) {
        Err(e) if is_not_found(&e) && ctx.m.on("ignore-missing") => {
            ctx.log
                .info("tag not found", &[("ref", r.common_name().as_str())]);
            Ok(())
        }
        res => res.map_err(|e| e.context(format!("deleting tag {}", r.common_name()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_exclude() {
        let tags: Vec<String> = ["v1", "v2", "a1", "sha256-abc", "sha256-abc.x.meta"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let re = |p: &str| Regex::anchored(p).unwrap();
        assert_eq!(filter_tags(tags.clone(), &[], &[]), tags);
        assert_eq!(filter_tags(tags.clone(), &[re("v.*")], &[]), ["v1", "v2"]);
        assert_eq!(
            filter_tags(tags.clone(), &[re("sha256.*")], &[re(r".*\.meta")]),
            ["sha256-abc"]
        );
        // Anchored: "v" alone does not match "v1".
        assert!(filter_tags(tags, &[re("v")], &[]).is_empty());
    }
}
