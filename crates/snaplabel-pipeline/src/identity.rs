//! Who is asking: the owner segment of every key a caller may touch.

use async_trait::async_trait;
use snaplabel_core::keys::{ANONYMOUS_OWNER, is_valid_owner};
use snaplabel_core::{ErrorBody, ErrorCode};

/// The request header carrying the caller's guest identity id.
pub use snaplabel_core::api::IDENTITY_HEADER;

/// Turns what a caller claims into the owner segment of its keys, or refuses.
#[async_trait]
pub trait IdentityVerifier: Send + Sync {
    async fn verify(&self, claimed: Option<&str>) -> Result<String, ErrorBody>;
}

/// No identities: every caller shares the `anonymous` owner. For single-user setups only.
pub struct SharedAnonymous;

#[async_trait]
impl IdentityVerifier for SharedAnonymous {
    async fn verify(&self, _claimed: Option<&str>) -> Result<String, ErrorBody> {
        Ok(ANONYMOUS_OWNER.to_string())
    }
}

/// Guest identities of an Amazon Cognito identity pool, verified with `DescribeIdentity`.
pub struct CognitoGuests {
    client: aws_sdk_cognitoidentity::Client,
    pool_id: String,
}

impl CognitoGuests {
    pub fn new(client: aws_sdk_cognitoidentity::Client, pool_id: impl Into<String>) -> Self {
        CognitoGuests {
            client,
            pool_id: pool_id.into(),
        }
    }
}

fn invalid(message: impl Into<String>) -> ErrorBody {
    ErrorBody::new(ErrorCode::InvalidIdentity, message)
}

#[async_trait]
impl IdentityVerifier for CognitoGuests {
    async fn verify(&self, claimed: Option<&str>) -> Result<String, ErrorBody> {
        let claimed = claimed
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                invalid(format!(
                    "send your guest identity id (Cognito GetId) in the {IDENTITY_HEADER} header"
                ))
            })?;
        if !is_valid_owner(claimed) {
            return Err(invalid("the identity id is malformed"));
        }
        // Identity ids are "region:uuid"; the region must be the pool's, which DescribeIdentity
        // below cannot tell us (it answers for any pool we may read).
        let pool_region = self.pool_id.split(':').next().unwrap_or_default();
        if claimed.split(':').next() != Some(pool_region) {
            return Err(invalid("the identity id belongs to another region's pool"));
        }
        let described = self
            .client
            .describe_identity()
            .identity_id(claimed)
            .send()
            .await
            .map_err(|err| {
                let service = err.into_service_error();
                if service.is_resource_not_found_exception()
                    || service.is_invalid_parameter_exception()
                {
                    invalid("the identity id is unknown to the identity pool")
                } else {
                    ErrorBody::new(
                        ErrorCode::Internal,
                        format!(
                            "identity check failed: {}",
                            aws_sdk_cognitoidentity::error::DisplayErrorContext(service)
                        ),
                    )
                }
            })?;
        match described.identity_id() {
            Some(id) if id == claimed => Ok(claimed.to_string()),
            _ => Err(invalid("the identity id is unknown to the identity pool")),
        }
    }
}
