//! The typed side of a release channel, as stage kinds have `Kind`: a channel names itself and
//! types its section once, and the adapter below gives it the `Publisher` the registry holds
//! (its schema, its located `check`, reading its section and skipping it when the file has
//! none), so no channel repeats that preamble or spells its name twice.

use schemars::JsonSchema;
use serde::de::DeserializeOwned;

use super::{Context, Planned, Publisher};
use crate::config::{Loaded, Problem};
use crate::error::Error;

/// A release channel, with its section typed.
pub trait Channel: Sync {
    /// `[release.<NAME>]` as the pipeline file writes it.
    type Section: DeserializeOwned + JsonSchema;
    /// Its name: its section is `[release.<NAME>]`, and other channels name it in `NEEDS`.
    const NAME: &'static str;
    /// One line about what it publishes.
    const ABOUT: &'static str;
    /// Channels whose results it builds on: when one of them fails, it is skipped.
    const NEEDS: &'static [&'static str] = &[];
    /// Whether it tells people about the release rather than publishing it (see
    /// [`Publisher::announces`]).
    const ANNOUNCES: bool = false;

    /// Problems of the section beyond its types, located through `loaded`.
    fn check(&self, _loaded: &Loaded, _section: &Self::Section) -> Vec<Problem> {
        Vec::new()
    }

    /// Decides everything before any request, from the section, the facts and the manifest.
    fn plan(&self, cx: &Context<'_>, section: Self::Section) -> Result<Box<dyn Planned>, Error>;
}

impl<C: Channel> Publisher for C {
    fn name(&self) -> &'static str {
        C::NAME
    }

    fn about(&self) -> &'static str {
        C::ABOUT
    }

    fn schema(&self) -> schemars::Schema {
        schemars::schema_for!(C::Section)
    }

    fn check(&self, loaded: &Loaded) -> Vec<Problem> {
        loaded.check_channel_section(C::NAME, |section: C::Section| {
            Channel::check(self, loaded, &section)
        })
    }

    fn needs(&self) -> &'static [&'static str] {
        C::NEEDS
    }

    fn announces(&self) -> bool {
        C::ANNOUNCES
    }

    fn plan(&self, cx: &Context<'_>) -> Result<Option<Box<dyn Planned>>, Error> {
        match super::section::<C::Section>(cx.loaded, C::NAME)? {
            Some(section) => Channel::plan(self, cx, section).map(Some),
            None => Ok(None),
        }
    }
}
