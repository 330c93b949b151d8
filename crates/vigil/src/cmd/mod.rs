pub mod annotate;
pub mod baseline;
pub mod config;
pub mod detect;
pub mod model;
pub mod serve;
pub mod track;
pub mod worker;
