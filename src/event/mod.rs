//! Events: the one record of everything the system learns or decides.

mod kind;
mod model;
mod record;
mod string_map;
mod summary;

pub use kind::*;
pub use model::*;
pub use record::{ChainHash, DecodeError, Event, FORMAT_VERSION, NewEvent, rfc3339};
pub use string_map::StringMap;
pub use summary::summary;
