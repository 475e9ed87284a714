//! The regbot YAML configuration. (Owned by the config/binary work.)
