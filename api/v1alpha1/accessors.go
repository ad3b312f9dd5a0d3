package v1alpha1

// PolicySpec returns the spec shared by both policy kinds.
func (l *LoopbackService) PolicySpec() *LoopbackServiceSpec { return &l.Spec }

// PolicyStatus returns the status.
func (l *LoopbackService) PolicyStatus() *LoopbackServiceStatus { return &l.Status }

// PolicySpec returns the spec shared by both policy kinds.
func (c *ClusterLoopbackService) PolicySpec() *LoopbackServiceSpec { return &c.Spec.LoopbackServiceSpec }

// PolicyStatus returns the status.
func (c *ClusterLoopbackService) PolicyStatus() *LoopbackServiceStatus { return &c.Status }
