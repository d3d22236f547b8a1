package pipeline

import (
	"sync"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/kube"
)

// KubeClusters connects to each stage's cluster once, from its kubeconfig context or the
// in-cluster service account, and reuses the connection.
type KubeClusters struct {
	mu sync.Mutex
	m  map[string]*kube.Cluster
}

// For implements Clusters.
func (k *KubeClusters) For(st *config.Stage) (Cluster, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if c, ok := k.m[st.Name]; ok {
		return c, nil
	}
	c, err := kube.Connect(st.Kubernetes.Kubeconfig, st.Kubernetes.Context, st.Kubernetes.Namespace, st.Kubernetes.InCluster)
	if err != nil {
		return nil, err
	}
	if k.m == nil {
		k.m = map[string]*kube.Cluster{}
	}
	k.m[st.Name] = c
	return c, nil
}
