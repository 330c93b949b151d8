//! Imports every resource module shares (one glob, so each module names
//! only its own logic).

pub(crate) use std::path::Path;
pub(crate) use std::sync::Arc;

pub(crate) use axum::body::{Body, Bytes};
pub(crate) use axum::extract::{Query, Request, State};
pub(crate) use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
pub(crate) use axum::response::{IntoResponse, Response};
pub(crate) use axum::Json;

pub(crate) use super::dto::*;
pub(crate) use super::error::{ApiError, ErrorBody};
pub(crate) use super::limits::BodyPace;
pub(crate) use super::params::{NumRange, QueryParams};
pub(crate) use super::MIB;
pub(crate) use crate::state::SharedState;
