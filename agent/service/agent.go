package service

// The agent's own service, as `deskside-agent install` registers it and the
// Windows MSI (installer/msi) installs it: both must agree, or an MSI
// upgrade and a hand install would make two services.
const (
	AgentName        = "deskside-agent"
	AgentDisplayName = "Deskside agent"
	AgentDescription = "Reports inventory and health to the Deskside relay and brokers remote support sessions."
)

// AgentArguments are the arguments the service manager starts the agent
// with, for the state directory state.
func AgentArguments(state string) []string { return []string{"run", "--state", state} }
