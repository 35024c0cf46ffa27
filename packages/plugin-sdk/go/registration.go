package corral

// Registration is what a plugin provides, as the host reads it from Register: its capabilities,
// and its identity where it repeats its plugin.yaml's. Name, Version and the other identity fields
// left empty are plugin.yaml's; given, Name and Version must match it. Every list may be empty.
type Registration struct {
	Name           string      `json:"name,omitempty"`
	Version        string      `json:"version,omitempty"`
	Description    string      `json:"description,omitempty"`
	Author         string      `json:"author,omitempty"`
	License        string      `json:"license,omitempty"`
	Homepage       string      `json:"homepage,omitempty"`
	MinHostVersion string      `json:"min_host_version,omitempty"`
	Routes         []Route     `json:"routes,omitempty"`
	MenuItems      []MenuItem  `json:"menu_items,omitempty"`
	Widgets        []Widget    `json:"widgets,omitempty"`
	Jobs           []Job       `json:"jobs,omitempty"`
	Templates      []Template  `json:"templates,omitempty"`
	I18n           *I18n       `json:"i18n,omitempty"`
	ErrorCodes     []ErrorCode `json:"error_codes,omitempty"`
	Groups         []Group     `json:"groups,omitempty"`
	// HiddenMenuItems are ids of the host's default menu items to hide while the plugin is loaded.
	HiddenMenuItems []string            `json:"hidden_menu_items,omitempty"`
	Events          []EventSubscription `json:"events,omitempty"`
	LandingPage     string              `json:"landing_page,omitempty"`
	// Permissions the plugin says it uses; what it gets comes from its plugin.yaml and its policy.
	Permissions []Permission `json:"permissions,omitempty"`
}

// Route is an HTTP route the host mounts under /plugins/<name>; Handler is the function it calls.
type Route struct {
	Method  string `json:"method"`
	Path    string `json:"path"`
	Handler string `json:"handler"`
	// Middleware runs before the handler, in order: "auth", "admin", "group:<name>".
	Middleware  []string `json:"middleware"`
	Description string   `json:"description,omitempty"`
}

// MenuItem is a menu entry at Location "admin", "agent" or "customer"; entries nest.
type MenuItem struct {
	ID       string     `json:"id"`
	Label    string     `json:"label"`
	Location string     `json:"location"`
	Path     string     `json:"path,omitempty"`
	Icon     string     `json:"icon,omitempty"`
	Order    int        `json:"order,omitempty"`
	Group    string     `json:"group,omitempty"`
	Children []MenuItem `json:"children,omitempty"`
}

// Widget is a dashboard widget: Handler returns its HTML; Size is small, medium, large or full.
type Widget struct {
	ID             string `json:"id"`
	Title          string `json:"title"`
	Handler        string `json:"handler"`
	Size           string `json:"size"`
	RefreshSeconds int    `json:"refresh_seconds,omitempty"`
}

// Job is a scheduled job: Handler is called on every match of the five-field Cron.
type Job struct {
	ID      string `json:"id"`
	Cron    string `json:"cron"`
	Handler string `json:"handler"`
	// TimeoutMs is 0 for the plugin's call timeout.
	TimeoutMs int  `json:"timeout,omitempty"`
	Enabled   bool `json:"enabled"`
}

// Template is a template the plugin adds, or (Override) a host template it replaces.
type Template struct {
	Name     string `json:"name"`
	Content  string `json:"content"`
	Override bool   `json:"override"`
}

// I18n is the plugin's translations: Translations[language][key].
type I18n struct {
	Namespace    string                       `json:"namespace"`
	Languages    []string                     `json:"languages"`
	Translations map[string]map[string]string `json:"translations"`
}

// ErrorCode is an error code the plugin defines, surfaced as "<plugin>:<code>" with HTTPStatus.
type ErrorCode struct {
	Code       string `json:"code"`
	Message    string `json:"message"`
	HTTPStatus int    `json:"http_status"`
}

// Group is an RBAC group created for the plugin's users.
type Group struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// EventSubscription sends each event whose type matches the glob Type to the function Handler.
type EventSubscription struct {
	Type    string `json:"type"`
	Handler string `json:"handler"`
}

// Permission is a permission of a type (db, cache, http, ...) with access (read, write) on a scope.
type Permission struct {
	Type   string   `json:"type"`
	Access []string `json:"access"`
	Scope  []string `json:"scope"`
}
