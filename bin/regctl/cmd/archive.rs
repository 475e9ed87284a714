//! `image export|import`: image tars (docker load input and OCI layout in one file).

use std::io::{BufWriter, Write};
use std::path::Path;

use regclient::archive::{self, ExportOpts, ImportOpts};
use regclient::{Error, Reference, Result};

use super::Ctx;

pub fn export(ctx: &Ctx) -> Result<()> {
    let r = ctx.reference(ctx.m.arg(0))?;
    let name = match ctx.m.value("name") {
        "" => None,
        n => Some(Reference::parse(n)?),
    };
    let opts = ExportOpts {
        platform: ctx.platform()?,
        name,
        compress: ctx.m.on("compress"),
    };
    let scheme = ctx.client.scheme(&r)?;
    let ctx_err = |e: Error| e.context(format!("exporting {}", r.common_name()));
    let digest = match ctx.m.arg(1) {
        "" => {
            let mut out = BufWriter::with_capacity(256 * 1024, std::io::stdout().lock());
            let d = archive::export(scheme, &r, &opts, &mut out).map_err(ctx_err)?;
            out.flush()?;
            d
        }
        file => {
            let path = Path::new(file);
            let f = std::fs::File::create(path).map_err(|e| Error::io(e, file.to_string()))?;
            let mut out = BufWriter::with_capacity(256 * 1024, f);
            let res = archive::export(scheme, &r, &opts, &mut out).and_then(|d| {
                out.flush()?;
                Ok(d)
            });
            match res {
                Ok(d) => d,
                Err(e) => {
                    // Never leave a partial tar that looks like a good one.
                    drop(out);
                    let _ = std::fs::remove_file(path);
                    return Err(ctx_err(e));
                }
            }
        }
    };
    ctx.log.info(
        "image exported",
        &[
            ("source", r.common_name().as_str()),
            ("digest", digest.to_string().as_str()),
        ],
    );
    Ok(())
}

pub fn import(ctx: &Ctx) -> Result<()> {
    let r = ctx.reference(ctx.m.arg(0))?;
    let file = ctx.m.arg(1);
    if file == "-" {
        return Err(super::invalid(
            "image import reads a file (it needs several passes), not stdin".to_string(),
        ));
    }
    let opts = ImportOpts {
        name: ctx.m.value("name").to_string(),
        deadline: None,
    };
    let scheme = ctx.client.scheme(&r)?;
    let report = archive::import(scheme, &r, Path::new(file), &opts)
        .map_err(|e| e.context(format!("importing {file} to {}", r.common_name())))?;
    ctx.log.info(
        "image imported",
        &[
            ("target", r.common_name().as_str()),
            ("format", report.format),
            ("digest", report.digest.to_string().as_str()),
            ("blobs", report.blobs_pushed.to_string().as_str()),
            ("skipped", report.blobs_skipped.to_string().as_str()),
        ],
    );
    Ok(())
}
