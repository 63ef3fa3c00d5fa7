package handlers

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/auth"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/sharedapp"
	"github.com/dropzoneai/dzconnect/internal/tenant"
)

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func tsp(t *time.Time) *timestamppb.Timestamp {
	if t == nil {
		return nil
	}
	return timestamppb.New(*t)
}

var roles = map[v1.Role]auth.Role{
	v1.Role_ROLE_ADMIN:    auth.RoleAdmin,
	v1.Role_ROLE_OPERATOR: auth.RoleOperator,
	v1.Role_ROLE_VIEWER:   auth.RoleViewer,
	v1.Role_ROLE_CONSUMER: auth.RoleConsumer,
}

var clouds = map[v1.Cloud]tenant.Cloud{
	v1.Cloud_CLOUD_GLOBAL:          tenant.CloudGlobal,
	v1.Cloud_CLOUD_US_GOV_GCC_HIGH: tenant.CloudUSGovGCCHigh,
	v1.Cloud_CLOUD_US_GOV_DOD:      tenant.CloudUSGovDoD,
	v1.Cloud_CLOUD_CHINA:           tenant.CloudChina,
	v1.Cloud_CLOUD_US_GOV_GCC:      tenant.CloudUSGovGCC,
}

var kinds = map[v1.IntegrationKind]integration.Kind{
	v1.IntegrationKind_INTEGRATION_KIND_MICROSOFT_365_DEFENDER: integration.KindDefender,
	v1.IntegrationKind_INTEGRATION_KIND_MICROSOFT_SENTINEL:     integration.KindSentinel,
}

var features = map[v1.Feature]integration.Feature{
	v1.Feature_FEATURE_CLOUD_APPS:    integration.FeatureCloudApps,
	v1.Feature_FEATURE_LIVE_RESPONSE: integration.FeatureLiveResponse,
	v1.Feature_FEATURE_EXCHANGE:      integration.FeatureExchange,
}

var modes = map[v1.ManagementMode]integration.Mode{
	v1.ManagementMode_MANAGEMENT_MODE_CUSTOMER_MANAGED: integration.ModeCustomerManaged,
	v1.ManagementMode_MANAGEMENT_MODE_PROVISIONED:      integration.ModeProvisioned,
	v1.ManagementMode_MANAGEMENT_MODE_SHARED:           sharedapp.ModeShared,
}

var states = map[v1.IntegrationState]integration.State{
	v1.IntegrationState_INTEGRATION_STATE_UNVERIFIED:        integration.StateUnverified,
	v1.IntegrationState_INTEGRATION_STATE_HEALTHY:           integration.StateHealthy,
	v1.IntegrationState_INTEGRATION_STATE_PROPAGATING:       integration.StatePropagating,
	v1.IntegrationState_INTEGRATION_STATE_DEGRADED:          integration.StateDegraded,
	v1.IntegrationState_INTEGRATION_STATE_BROKEN:            integration.StateBroken,
	v1.IntegrationState_INTEGRATION_STATE_BLOCKED_BY_POLICY: integration.StateBlockedByPolicy,
	v1.IntegrationState_INTEGRATION_STATE_PROVISIONING:      integration.StateProvisioning,
	v1.IntegrationState_INTEGRATION_STATE_DEPROVISIONING:    integration.StateDeprovisioning,
}

var credentialTypes = map[v1.CredentialType]integration.CredentialType{
	v1.CredentialType_CREDENTIAL_TYPE_CLIENT_SECRET: integration.CredentialClientSecret,
	v1.CredentialType_CREDENTIAL_TYPE_CERTIFICATE:   integration.CredentialCertificate,
}

var credentialSources = map[v1.CredentialSource]integration.CredentialSource{
	v1.CredentialSource_CREDENTIAL_SOURCE_CUSTOMER:    integration.SourceCustomer,
	v1.CredentialSource_CREDENTIAL_SOURCE_PROVISIONED: integration.SourceProvisioned,
}

var credentialStates = map[v1.CredentialState]integration.CredentialState{
	v1.CredentialState_CREDENTIAL_STATE_PENDING:  integration.CredentialPending,
	v1.CredentialState_CREDENTIAL_STATE_ACTIVE:   integration.CredentialActive,
	v1.CredentialState_CREDENTIAL_STATE_RETIRING: integration.CredentialRetiring,
	v1.CredentialState_CREDENTIAL_STATE_REMOVED:  integration.CredentialRemoved,
}

// reverse inverts an enum map.
func reverse[K, V comparable](m map[K]V) map[V]K {
	out := make(map[V]K, len(m))
	for k, v := range m {
		out[v] = k
	}
	return out
}

var (
	roleToProto    = reverse(roles)
	cloudToProto   = reverse(clouds)
	kindToProto    = reverse(kinds)
	featureToProto = reverse(features)
	modeToProto    = reverse(modes)
	stateToProto   = reverse(states)

	credentialTypeToProto   = reverse(credentialTypes)
	credentialSourceToProto = reverse(credentialSources)
	credentialStateToProto  = reverse(credentialStates)
)
