//! The command tree: every command, alias and flag of regctl as data.

use crate::cmd::{artifact, blob, image, manifest, misc, tag};
use crate::flags::{Command, Flag};

pub static GLOBAL_FLAGS: &[Flag] = &[
    Flag::opt(
        "host",
        None,
        "KV",
        "Registry settings for this run: reg=NAME,user=U,pass=P,tls=enabled|insecure|disabled",
    )
    .repeat(),
    Flag::opt("logopt", None, "OPT", "Log option: json").repeat(),
    Flag::opt("user-agent", None, "UA", "Override the user agent"),
    Flag::opt(
        "verbosity",
        Some('v'),
        "LEVEL",
        "Log level: trace, debug, info, warn, error",
    )
    .default("warn"),
];

const PRETTY: &str = "{{printPretty .}}";

const fn format(default: &'static str) -> Flag {
    Flag::opt(
        "format",
        None,
        "TMPL",
        "Output format (Go template or raw, body, headers)",
    )
    .default(default)
}

const PLATFORM: Flag = Flag::opt(
    "platform",
    Some('p'),
    "P",
    "Platform to select from an index (os/arch[/variant], or local)",
);
const FILTER_ANNOTATION: Flag = Flag::opt(
    "filter-annotation",
    None,
    "K[=V]",
    "Keep referrers with this annotation (and value)",
)
.repeat();
const FILTER_ARTIFACT_TYPE: Flag = Flag::opt(
    "filter-artifact-type",
    None,
    "TYPE",
    "Keep referrers with this artifact type",
);
const EXTERNAL: Flag = Flag::opt(
    "external",
    None,
    "REF",
    "Read referrers from this repository instead",
);
const SLOW_REFERRERS: Flag = Flag::switch(
    "slow-referrers",
    None,
    "Also scan every manifest of a layout for referrers without a fallback tag",
);
const SORT_ANNOTATION: Flag = Flag::opt(
    "sort-annotation",
    None,
    "KEY",
    "Sort referrers by this annotation",
);
const SORT_DESC: Flag = Flag::switch("sort-desc", None, "Sort in descending order");
const LATEST: Flag = Flag::switch(
    "latest",
    None,
    "Pick the newest referrer by org.opencontainers.image.created",
);
const DIGEST_TAGS: Flag = Flag::switch(
    "digest-tags",
    None,
    "Include digest tags (sha256-<hex>.*) of each manifest",
);
const IGNORE_MISSING: Flag = Flag::switch(
    "ignore-missing",
    None,
    "Succeed when the target does not exist",
);

static MANIFEST_GET_FLAGS: &[Flag] = &[
    format(PRETTY),
    PLATFORM,
    Flag::switch(
        "require-list",
        None,
        "Deprecated: only rejected together with --platform",
    ),
    Flag::switch("list", None, "Deprecated, has no effect").hidden(),
];

static MANIFEST_HEAD_FLAGS: &[Flag] = &[
    Flag::opt(
        "format",
        None,
        "TMPL",
        "Output format (default prints the digest; or a Go template, headers, raw)",
    ),
    Flag::opt(
        "platform",
        Some('p'),
        "P",
        "Platform to select from an index (reads the index with GET)",
    ),
    Flag::switch(
        "require-digest",
        None,
        "Read the manifest when the server does not report its digest",
    ),
    Flag::switch("require-list", None, "Deprecated, has no effect"),
    Flag::switch("list", None, "Deprecated, has no effect").hidden(),
];

static MANIFEST_DELETE_FLAGS: &[Flag] = &[
    Flag::switch(
        "force-tag-dereference",
        None,
        "Resolve a tag to its digest and delete that (removes every tag on it)",
    ),
    IGNORE_MISSING,
    Flag::switch(
        "referrers",
        None,
        "Also update the referrers list of the manifest's subject",
    ),
];

static ARTIFACT_LIST_FLAGS: &[Flag] = &[
    DIGEST_TAGS,
    EXTERNAL,
    FILTER_ANNOTATION,
    FILTER_ARTIFACT_TYPE,
    format(PRETTY),
    LATEST,
    PLATFORM,
    SLOW_REFERRERS,
    SORT_ANNOTATION,
    SORT_DESC,
];

static ARTIFACT_TREE_FLAGS: &[Flag] = &[
    DIGEST_TAGS,
    EXTERNAL,
    FILTER_ANNOTATION,
    FILTER_ARTIFACT_TYPE,
    format(PRETTY),
    SLOW_REFERRERS,
];

static ARTIFACT_GET_FLAGS: &[Flag] = &[
    Flag::switch("config", None, "Print the config instead of the layers"),
    Flag::opt("config-file", None, "FILE", "Write the config to this file"),
    Flag::opt(
        "external",
        None,
        "REF",
        "Read referrers from this repository (with --subject)",
    ),
    Flag::opt(
        "file",
        Some('f'),
        "NAME",
        "Only layers with this title annotation",
    )
    .repeat(),
    Flag::opt(
        "file-media-type",
        Some('m'),
        "TYPE",
        "Only layers with this media type",
    )
    .repeat(),
    FILTER_ANNOTATION,
    FILTER_ARTIFACT_TYPE,
    LATEST,
    Flag::opt(
        "output",
        Some('o'),
        "DIR",
        "Write layers as files into this directory",
    ),
    PLATFORM,
    SLOW_REFERRERS,
    SORT_ANNOTATION,
    SORT_DESC,
    Flag::switch("strip-dirs", None, "Drop directories from layer titles"),
    Flag::opt(
        "subject",
        None,
        "REF",
        "Find the artifact among the referrers of this subject",
    ),
    Flag::opt("refers", None, "REF", "Old name of --subject").hidden(),
];

pub static ROOT: Command = Command {
    name: "regctl",
    aliases: &[],
    args: "",
    min_args: 0,
    max_args: 0,
    about: "Utility for accessing OCI registries and image layouts",
    long: "References are registry/repository[:tag][@digest], or ocidir://path[:tag][@digest] \
           for an OCI image layout directory.",
    flags: &[],
    subs: &[
        Command::group(
            "artifact",
            &[],
            "Manage artifacts and referrers",
            &[
                Command {
                    name: "get",
                    aliases: &["pull"],
                    args: "[reference]",
                    min_args: 0,
                    max_args: 1,
                    about: "Download artifact layers or the config",
                    long: "With one matching layer and no --output, the layer is written to \
                           stdout. With --subject, the artifact is picked from the referrers \
                           of that subject.",
                    flags: ARTIFACT_GET_FLAGS,
                    subs: &[],
                    run: Some(artifact::get),
                    hidden: false,
                },
                Command {
                    name: "list",
                    aliases: &["ls"],
                    args: "<reference>",
                    min_args: 1,
                    max_args: 1,
                    about: "List the referrers of a manifest",
                    long: "",
                    flags: ARTIFACT_LIST_FLAGS,
                    subs: &[],
                    run: Some(artifact::list),
                    hidden: false,
                },
                Command {
                    name: "tree",
                    aliases: &[],
                    args: "<reference>",
                    min_args: 1,
                    max_args: 1,
                    about: "Show the graph of index children and referrers",
                    long: "",
                    flags: ARTIFACT_TREE_FLAGS,
                    subs: &[],
                    run: Some(artifact::tree),
                    hidden: false,
                },
            ],
        ),
        Command::group(
            "blob",
            &["layer"],
            "Manage blobs",
            &[
                Command {
                    name: "copy",
                    aliases: &["cp"],
                    args: "<source> <target> <digest>",
                    min_args: 3,
                    max_args: 3,
                    about: "Copy a blob between repositories",
                    long: "",
                    flags: &[],
                    subs: &[],
                    run: Some(blob::copy),
                    hidden: false,
                },
                Command {
                    name: "delete",
                    aliases: &["del", "rm"],
                    args: "<repository> <digest>",
                    min_args: 2,
                    max_args: 2,
                    about: "Delete a blob",
                    long: "",
                    flags: &[],
                    subs: &[],
                    run: Some(blob::delete),
                    hidden: false,
                },
                Command {
                    name: "get",
                    aliases: &["pull"],
                    args: "<repository> <digest>",
                    min_args: 2,
                    max_args: 2,
                    about: "Write a blob to stdout",
                    long: "",
                    flags: &[
                        format(PRETTY),
                        Flag::opt("media-type", None, "TYPE", "Deprecated, ignored").hidden(),
                    ],
                    subs: &[],
                    run: Some(blob::get),
                    hidden: false,
                },
                Command {
                    name: "head",
                    aliases: &["digest"],
                    args: "<repository> <digest>",
                    min_args: 2,
                    max_args: 2,
                    about: "Check a blob exists and show its headers or descriptor",
                    long: "",
                    flags: &[Flag::opt(
                        "format",
                        None,
                        "TMPL",
                        "Output format (default prints the headers, or the descriptor)",
                    )],
                    subs: &[],
                    run: Some(blob::head),
                    hidden: false,
                },
                Command {
                    name: "put",
                    aliases: &["push"],
                    args: "<repository>",
                    min_args: 1,
                    max_args: 1,
                    about: "Upload a blob from stdin",
                    long: "",
                    flags: &[
                        Flag::opt("digest", None, "DIGEST", "Expected digest of the content"),
                        format("{{println .Digest}}"),
                        Flag::opt("content-type", None, "TYPE", "Deprecated, ignored").hidden(),
                    ],
                    subs: &[],
                    run: Some(blob::put),
                    hidden: false,
                },
            ],
        ),
        Command {
            name: "completion",
            aliases: &[],
            args: "<bash|zsh|fish>",
            min_args: 1,
            max_args: 1,
            about: "Print a shell completion script",
            long: "",
            flags: &[],
            subs: &[],
            run: Some(misc::completion),
            hidden: false,
        },
        Command {
            name: "digest",
            aliases: &[],
            args: "",
            min_args: 0,
            max_args: 0,
            about: "Compute the digest of stdin",
            long: "",
            flags: &[
                Flag::opt("algorithm", None, "ALG", "Digest algorithm: sha256, sha512")
                    .default("sha256"),
                format("{{.String}}"),
            ],
            subs: &[],
            run: Some(misc::digest),
            hidden: true,
        },
        Command {
            name: "help",
            aliases: &[],
            args: "[command...]",
            min_args: 0,
            max_args: 8,
            about: "Show help for a command",
            long: "",
            flags: &[],
            subs: &[],
            run: Some(misc::help),
            hidden: false,
        },
        Command::group(
            "image",
            &[],
            "Manage images",
            &[
                Command {
                    name: "copy",
                    aliases: &["cp"],
                    args: "<source> <target>",
                    min_args: 2,
                    max_args: 2,
                    about: "Copy or retag an image, with every platform",
                    long: "",
                    flags: &[
                        DIGEST_TAGS,
                        Flag::switch(
                            "fast",
                            None,
                            "Skip referrers and digest tags when the target digest matches",
                        ),
                        Flag::switch("force-recursive", None, "Copy everything again"),
                        Flag::opt(
                            "format",
                            None,
                            "TMPL",
                            "Output format (default prints the target reference)",
                        ),
                        Flag::switch(
                            "include-external",
                            None,
                            "Copy external (foreign) layers too",
                        ),
                        Flag::opt(
                            "platform",
                            Some('p'),
                            "P",
                            "Copy only this platform (the target is single-platform)",
                        ),
                        Flag::opt(
                            "platforms",
                            None,
                            "P",
                            "Copy only these platforms, keeping the index",
                        )
                        .repeat()
                        .hidden(),
                        Flag::switch("referrers", None, "Copy referrers too"),
                        Flag::opt(
                            "referrers-src",
                            None,
                            "REF",
                            "Read referrers from this repository",
                        ),
                        Flag::opt(
                            "referrers-tgt",
                            None,
                            "REF",
                            "Write referrers to this repository",
                        ),
                    ],
                    subs: &[],
                    run: Some(image::copy),
                    hidden: false,
                },
                Command {
                    name: "delete",
                    aliases: &[],
                    args: "<reference>",
                    min_args: 1,
                    max_args: 1,
                    about: "Delete an image (same as manifest delete)",
                    long: "",
                    flags: MANIFEST_DELETE_FLAGS,
                    subs: &[],
                    run: Some(manifest::delete),
                    hidden: false,
                },
                Command {
                    name: "digest",
                    aliases: &[],
                    args: "<reference>",
                    min_args: 1,
                    max_args: 1,
                    about: "Show the digest of an image",
                    long: "",
                    flags: MANIFEST_HEAD_FLAGS,
                    subs: &[],
                    run: Some(image::digest),
                    hidden: false,
                },
                Command {
                    name: "inspect",
                    aliases: &["config"],
                    args: "<reference>",
                    min_args: 1,
                    max_args: 1,
                    about: "Show the image config",
                    long: "",
                    flags: &[
                        format(PRETTY),
                        Flag::opt(
                            "platform",
                            Some('p'),
                            "P",
                            "Platform to select from an index",
                        )
                        .default("local"),
                    ],
                    subs: &[],
                    run: Some(image::inspect),
                    hidden: false,
                },
                Command {
                    name: "manifest",
                    aliases: &[],
                    args: "<reference>",
                    min_args: 1,
                    max_args: 1,
                    about: "Show the manifest (same as manifest get)",
                    long: "",
                    flags: MANIFEST_GET_FLAGS,
                    subs: &[],
                    run: Some(manifest::get),
                    hidden: false,
                },
            ],
        ),
        Command::group(
            "manifest",
            &[],
            "Manage manifests",
            &[
                Command {
                    name: "delete",
                    aliases: &["del", "rm", "remove"],
                    args: "<reference>",
                    min_args: 1,
                    max_args: 1,
                    about: "Delete a manifest by digest (removes every tag on it)",
                    long: "",
                    flags: MANIFEST_DELETE_FLAGS,
                    subs: &[],
                    run: Some(manifest::delete),
                    hidden: false,
                },
                Command {
                    name: "get",
                    aliases: &["pull"],
                    args: "<reference>",
                    min_args: 1,
                    max_args: 1,
                    about: "Show a manifest or index",
                    long: "",
                    flags: MANIFEST_GET_FLAGS,
                    subs: &[],
                    run: Some(manifest::get),
                    hidden: false,
                },
                Command {
                    name: "head",
                    aliases: &["digest"],
                    args: "<reference>",
                    min_args: 1,
                    max_args: 1,
                    about: "Check a manifest exists and show its digest",
                    long: "",
                    flags: MANIFEST_HEAD_FLAGS,
                    subs: &[],
                    run: Some(manifest::head),
                    hidden: false,
                },
                Command {
                    name: "put",
                    aliases: &["push"],
                    args: "<reference>",
                    min_args: 1,
                    max_args: 1,
                    about: "Push a manifest read from stdin",
                    long: "",
                    flags: &[
                        Flag::switch(
                            "by-digest",
                            None,
                            "Push by digest (no tag) and print the digest",
                        ),
                        Flag::opt(
                            "content-type",
                            Some('t'),
                            "TYPE",
                            "Media type (detected from the body when not given)",
                        ),
                        Flag::opt("format", None, "TMPL", "Output format"),
                    ],
                    subs: &[],
                    run: Some(manifest::put),
                    hidden: false,
                },
            ],
        ),
        Command {
            name: "ref",
            aliases: &[],
            args: "<reference>",
            min_args: 1,
            max_args: 1,
            about: "Parse a reference",
            long: "",
            flags: &[format("{{.CommonName}}")],
            subs: &[],
            run: Some(misc::reference),
            hidden: true,
        },
        Command::group(
            "tag",
            &[],
            "Manage tags",
            &[
                Command {
                    name: "delete",
                    aliases: &["del", "rm", "remove"],
                    args: "<reference>",
                    min_args: 1,
                    max_args: 1,
                    about: "Delete a tag (other tags on the same manifest stay)",
                    long: "",
                    flags: &[IGNORE_MISSING],
                    subs: &[],
                    run: Some(tag::delete),
                    hidden: false,
                },
                Command {
                    name: "ls",
                    aliases: &["list"],
                    args: "<repository>",
                    min_args: 1,
                    max_args: 1,
                    about: "List tags",
                    long: "Patterns of --include and --exclude match whole tags.",
                    flags: &[
                        Flag::opt("exclude", None, "RE", "Drop tags matching this regexp").repeat(),
                        format(PRETTY),
                        Flag::opt("include", None, "RE", "Keep only tags matching this regexp")
                            .repeat(),
                        Flag::opt("last", None, "TAG", "List tags after this one"),
                        Flag::opt("limit", None, "N", "Ask for at most N tags"),
                    ],
                    subs: &[],
                    run: Some(tag::list),
                    hidden: false,
                },
            ],
        ),
        Command {
            name: "version",
            aliases: &[],
            args: "",
            min_args: 0,
            max_args: 0,
            about: "Show the version",
            long: "",
            flags: &[format(PRETTY)],
            subs: &[],
            run: Some(misc::version),
            hidden: false,
        },
    ],
    run: None,
    hidden: false,
};
