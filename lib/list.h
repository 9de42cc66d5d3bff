/* Intrusive doubly linked list (as in the Linux kernel and nginx's
 * ngx_queue_t): a node lives inside the element, so linking never
 * allocates and unlinking is O(1). */
#ifndef INFSCHED_LIST_H
#define INFSCHED_LIST_H

#include <stddef.h>

typedef struct list_node {
  struct list_node *prev;
  struct list_node *next;
} list_node_t;

static inline void list_init(list_node_t *head) {
  head->prev = head->next = head;
}

static inline int list_empty(const list_node_t *head) {
  return head->next == head;
}

static inline void list_push_back(list_node_t *head, list_node_t *n) {
  n->prev = head->prev;
  n->next = head;
  head->prev->next = n;
  head->prev = n;
}

static inline void list_push_front(list_node_t *head, list_node_t *n) {
  n->next = head->next;
  n->prev = head;
  head->next->prev = n;
  head->next = n;
}

static inline void list_remove(list_node_t *n) {
  n->prev->next = n->next;
  n->next->prev = n->prev;
  n->prev = n->next = n;
}

#define list_entry(ptr, type, member)                                        \
  ((type *)((char *)(ptr)-offsetof(type, member)))

#endif
